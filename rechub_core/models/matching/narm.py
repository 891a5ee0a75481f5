"""NARM: neural attentive session-based recommendation.

Li, Ren, Chen, Ren, Lian & Ma, "Neural Attentive Session-based
Recommendation", CIKM 2017, Sec. 3. One GRU reads the session's items
(Sec. 3.2; the global and the local encoder share its states, Fig. 4). The
global encoder's representation is the last state, ``c_g = h_t`` (Eq. 5); the
local encoder attends over the states of the real positions,
``c_l = sum_j alpha_tj h_j`` (Eq. 6) with
``alpha_tj = v^T sigmoid(A1 h_t + A2 h_j)`` (Eq. 7-8, not normalised, as in
the paper). The bi-linear decoder (Sec. 3.3) scores item i as
``emb_i^T B c_t`` with ``c_t = [c_g; c_l]``, so the user vector is ``B c_t``
and the item vector is the item's embedding, the same table the GRU reads.
Dropout sits between the item embedding and the GRU and between the encoder
and the decoder (Sec. 4.3, 25% and 50%). The paper trains with cross-entropy
over all items (``FullSoftmax``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FeatureEmbedding, GRUEncoder
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class NARMConfig:
    name: Literal["narm"] = "narm"
    embed_dim: int = 50  # the paper's item embedding size
    hidden_dim: int = 100  # and GRU size
    embedding_dropout: float = 0.25
    decoder_dropout: float = 0.5

    def __post_init__(self):
        if self.embed_dim < 1 or self.hidden_dim < 1:
            raise ValueError(f"embed_dim and hidden_dim must be positive, got {self.embed_dim}, {self.hidden_dim}")
        for name in ("embedding_dropout", "decoder_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class NARM(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = NARM(schema, NARMConfig(embed_dim=8, hidden_dim=16)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: NARMConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "NARM")
        self.history_name = history.name
        hidden = config.hidden_dim
        self.embedding = FeatureEmbedding((items, history), config.embed_dim)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.encoder = GRUEncoder(config.embed_dim, hidden)
        self.a1 = nn.Linear(hidden, hidden, bias=False)  # A1, on the last state
        self.a2 = nn.Linear(hidden, hidden, bias=False)  # A2, on each state
        self.v = nn.Linear(hidden, 1, bias=False)
        self.decoder_dropout = nn.Dropout(config.decoder_dropout)
        self.bilinear = nn.Linear(2 * hidden, config.embed_dim, bias=False)  # B

    def attention(self, states: torch.Tensor, last: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``alpha_tj (B, L)`` of the states ``(B, L, H)`` against the last state ``(B, H)``, zero at padding."""
        alpha = self.v(torch.sigmoid(self.a1(last).unsqueeze(1) + self.a2(states))).squeeze(-1)  # (B, L)
        return alpha * mask.to(alpha.dtype)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L), left-padded
        mask = ids > 0
        x = self.embedding_dropout(self.embedding.lookup(self.history_name, ids))  # (B, L, E)
        states, last = self.encoder(x, mask)  # (B, L, H), (B, H)
        local = (self.attention(states, last, mask).unsqueeze(-1) * states).sum(dim=1)  # (B, H)
        c = torch.cat([last, local], dim=-1)  # (B, 2H): [c_g; c_l]
        return self.bilinear(self.decoder_dropout(c))  # (B, E): B c_t

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, E)
