"""ComiRec-SA: multi-interest extraction by self-attention.

Cen et al., "Controllable Multi-Interest Framework for Recommendation", KDD
2020. The user's behaviours (item embeddings of the left-padded history) plus
trainable positional embeddings form H; K attention heads
A = softmax(W2 tanh(W1 H^T)) over the valid positions give the interests
V = A H, ``(B, K, D)`` (Sec. 3.3, ``SelfAttentiveInterests``). ``interest_for``
picks, for a training row, the interest with the largest inner product with
the positive item (Sec. 3.4). The paper trains with a sampled softmax
(Sec. 3.4). At serving time each interest retrieves its own top-N;
``rechub_core.retrieval`` merges and aggregates them (Sec. 3.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FeatureEmbedding, SelfAttentiveInterests, nearest_interest
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class ComiRecSAConfig:
    name: Literal["comirec_sa"] = "comirec_sa"
    embed_dim: int = 64
    num_interests: int = 4
    attention_dim: int = 256  # d_a; the authors' code uses 4 x embed_dim

    def __post_init__(self):
        if self.embed_dim < 1 or self.num_interests < 1 or self.attention_dim < 1:
            raise ValueError(
                f"embed_dim ({self.embed_dim}), num_interests ({self.num_interests}) and "
                f"attention_dim ({self.attention_dim}) must be at least 1"
            )


class ComiRecSA(nn.Module):
    """``user_embedding(batch) -> (B, K, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = ComiRecSA(schema, ComiRecSAConfig(embed_dim=8, num_interests=2, attention_dim=16)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 2, 8])
    """

    def __init__(self, schema: Schema, config: ComiRecSAConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "ComiRec-SA")
        self.history_name = history.name
        self.embedding = FeatureEmbedding((items, history), config.embed_dim)  # shared item table
        self.interests = SelfAttentiveInterests(
            config.embed_dim,
            num_interests=config.num_interests,
            attention_dim=config.attention_dim,
            max_len=history.max_len,
        )

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L)
        return self.interests(self.embedding.lookup(self.history_name, ids), ids > 0)  # (B, K, D)

    def interest_for(self, user: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nearest_interest(user, target)  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
