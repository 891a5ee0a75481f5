"""SASRec: self-attentive sequential recommendation.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018. The
input is a user's last ``n`` items, left-padded (most recent last). Each item's
embedding plus a learned positional embedding (Sec. III-A, no scaling), with
dropout, goes through ``num_blocks`` causal Transformer blocks (Sec. III-B/C)
and a final layer norm. The state at position t predicts item t+1 by a dot
product with the same item embedding table (shared input/output embeddings,
Sec. III-D). As a two-tower model the user vector is the state at the last
position and the item vector the item's embedding; ``fit_next_item`` in
``rechub_core.training.next_item`` trains it with the paper's objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FeatureEmbedding, TransformerBlock
from rechub_core.models.config import check_transformer
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class SASRecConfig:
    name: Literal["sasrec"] = "sasrec"
    embed_dim: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.2

    def __post_init__(self):
        check_transformer(self.embed_dim, self.num_heads, self.num_blocks, self.dropout)


class SASRec(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = SASRec(schema, SASRecConfig(embed_dim=8)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: SASRecConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "SASRec")
        self.history_name = history.name
        self.max_len = history.max_len
        # one table for input and output items; the history reads item_id's slice
        self.embedding = FeatureEmbedding((items, history), config.embed_dim)
        self.positions = nn.Embedding(history.max_len, config.embed_dim)
        nn.init.normal_(self.positions.weight, std=0.01)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.embed_dim, config.num_heads, config.dropout) for _ in range(config.num_blocks)
        )
        self.final_norm = nn.LayerNorm(config.embed_dim)

    def sequence_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Causal states of left-padded ids ``(B, L) -> (B, L, D)``, zero at padding; ``L <= max_len``.

        Positions count from the right end of the ``max_len`` window, so a
        shorter input is the same as one left-padded to ``max_len``.
        """
        length = ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds the history's max_len {self.max_len}")
        mask = ids > 0  # (B, L)
        pos = torch.arange(self.max_len - length, self.max_len, device=ids.device)  # (L,)
        x = self.embedding.lookup(self.history_name, ids) + self.positions(pos)  # (B, L, D)
        x = self.dropout(x) * mask.unsqueeze(-1).to(x.dtype)  # (B, L, D)
        for block in self.blocks:
            x = block(x, mask, causal=True)  # (B, L, D)
        return self.final_norm(x) * mask.unsqueeze(-1).to(x.dtype)  # (B, L, D)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.sequence_states(batch[self.history_name])[:, -1]  # (B, D): the most recent position

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
