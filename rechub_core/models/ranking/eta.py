"""ETA.

Chen, Zhou et al., "End-to-End User Behavior Retrieval in Click-Through Rate
Prediction Model" (ETA), arXiv 2108.04468, 2021.

Implemented as in the paper (Sec. 3):
- Long-term interest: every behaviour of the long window (``long_item`` with
  ``long_category``, embedded by the model's own item tables, as the target is)
  and the target are hashed by SimHash (``rechub_core.layers.simhash``) into
  ``hash_bits``-bit signatures with one fixed random projection; the ``top_k``
  behaviours nearest to the target in Hamming distance (padding never, ties to
  the more recent) are retrieved, and multi-head target attention
  (``MultiHeadTargetAttention``) reads them, each behaviour's embedding
  concatenated with the embedding of its time before the impression
  (``long_dt``).
- Short-term interest: multi-head target attention over the short history
  (``hist`` with ``hist_category`` and ``hist_dt``).
- Both interests, every other field's embedding (the target's among them) and
  the dense features go through an MLP to the logit.

End to end: the embeddings the hash reads are the ones being trained, so the
retrieval follows the training (no pre-trained index, which is ETA's point).
The hash itself (sign bits, distances, top-k) is integer work with no
gradient; gradients reach the retrieved behaviours' embeddings through the
attention. The window's embedding ``(B, L, A*D)`` is computed for hashing
without recording it for backward; only the ``top_k`` retrieved behaviours are
re-embedded with gradients, so training memory grows with ``top_k``, not with
the window's length ``L``. In serving, ETA precomputes the behaviours'
signatures; here they are recomputed per request from the current tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.behavior import LONG, SHORT, TIMES, BehaviorInputs
from rechub_core.layers.embedding import FeatureEmbedding
from rechub_core.layers.mlp import MLP
from rechub_core.layers.simhash import SimHash
from rechub_core.layers.target_attention import MultiHeadTargetAttention
from rechub_core.models.config import require_dropout, require_layers, require_positive

NEEDED_GROUPS = ("user", "item", "behavior", "long")  # hist, the target item, hist_category/hist_dt, the long window


@dataclass
class ETAConfig:
    name: Literal["eta"] = "eta"
    embed_dim: int = 16
    hash_bits: int = 16  # m: SimHash signature bits
    top_k: int = 50  # long-window behaviours retrieved per row
    num_heads: int = 4  # heads of both target attentions, each of embed_dim
    hash_seed: int = 0  # seeds the fixed random projection of SimHash
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: list(NEEDED_GROUPS))

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim, hash_bits=self.hash_bits, top_k=self.top_k, num_heads=self.num_heads)
        require_dropout(self.dropout)
        missing = [g for g in NEEDED_GROUPS if g not in self.groups]
        if missing:
            raise ValueError(f"ETA reads the short history and the long window: groups must include {missing}")


class ETA(nn.Module):
    """``forward(batch) -> (B,)`` logits."""

    def __init__(self, schema: Schema, config: ETAConfig):
        super().__init__()
        self.inputs = BehaviorInputs(schema, config.groups, [SHORT, LONG], config.embed_dim)
        features = {f.name: f for f in schema.features(*config.groups)}
        self.time_names = [TIMES[SHORT[0]], TIMES[LONG[0]]]  # hist_dt, long_dt
        self.times = FeatureEmbedding(tuple(features[n] for n in self.time_names), config.embed_dim)
        item_dim = self.inputs.item_dim
        self.hash = SimHash(item_dim, config.hash_bits, seed=config.hash_seed)
        self.top_k = config.top_k
        key_dim = item_dim + config.embed_dim  # a behaviour's attributes and its time
        heads = {"num_heads": config.num_heads, "head_dim": config.embed_dim, "out_dim": item_dim}
        self.short = MultiHeadTargetAttention(item_dim, key_dim, **heads)
        self.long = MultiHeadTargetAttention(item_dim, key_dim, **heads)
        self.mlp = MLP(self.inputs.plain_dim + 2 * item_dim, config.mlp_dims, dropout=config.dropout, output_dim=1)

    def _with_time(self, behaviors: torch.Tensor, which: int, dt: torch.Tensor) -> torch.Tensor:
        """Each behaviour's embedding ``(B, L, A*D)`` and its time's ``(B, L, D)`` side by side."""
        return torch.cat([behaviors, self.times.lookup(self.time_names[which], dt)], dim=-1)  # (B, L, A*D + D)

    def retrieve(self, batch: dict[str, torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``top_k`` long-window behaviours nearest to the target: ``(B, k, A*D + D)`` and their ``(B, k)`` mask."""
        ids = self.inputs.ids(batch, 1)  # [(B, L)] item, category
        with torch.no_grad():  # hashing has no gradient: the window's (B, L, A*D) is not kept for backward
            index, valid = self.hash(target, self.inputs.embed(ids, 1), ids[0] > 0, self.top_k)  # (B, k), (B, k)
        picked = [t.gather(1, index) for t in ids]  # [(B, k)]
        dt = batch[self.time_names[1]].gather(1, index)  # (B, k)
        return self._with_time(self.inputs.embed(picked, 1), 1, dt), valid

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.inputs.target(batch)  # (B, A*D)
        recent, recent_mask = self.inputs.sequence(batch, 0)  # (B, Ls, A*D), (B, Ls)
        recent = self._with_time(recent, 0, batch[self.time_names[0]])  # (B, Ls, A*D + D)
        retrieved, retrieved_mask = self.retrieve(batch, target)  # (B, k, A*D + D), (B, k)
        x = torch.cat(
            [
                self.inputs.plain(batch),
                self.short(target, recent, recent_mask),
                self.long(target, retrieved, retrieved_mask),
            ],
            dim=1,
        )  # (B, P + 2*A*D)
        return self.mlp(x).squeeze(-1)  # (B,)
