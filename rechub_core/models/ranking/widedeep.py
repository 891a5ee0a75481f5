"""Wide & Deep.

Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
One logit ``w_wide^T [x, φ(x)] + w_deep^T a^(lf) + b``, trained jointly:

- the wide part is a linear model over the raw features ``x`` (a weight per id
  of every sparse feature, the mean weight of a sequence's ids, a weight per
  dense column; ``FirstOrder``) and over the cross-product transformations
  ``φ(x)`` named by ``crosses``: one weight per combination of the member ids
  (``CrossedIds``), exact while a cross has at most ``cross_buckets``
  combinations and hashed modulo ``cross_buckets`` rows beyond that;
- the deep part is an MLP (ReLU) over every field's embedding and the dense
  columns concatenated (``FlatInput``).

The wide part memorises the configured co-occurrences; the deep part
generalises through embeddings. Departures from the paper: the paper trains
the wide part with FTRL and L1 regularisation and the deep part with AdaGrad;
here one optimizer (the trainer's) trains both parts. The paper's app-store
model used 32-d embeddings and layers of 1024, 512 and 256; the defaults here
are smaller, for this project's data. ``cross_buckets`` defaults to 10^6 rows
per cross (4 MB of float32 weights), which keeps any cross of two
vocabularies up to 1000 ids exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema, SparseFeature, sparse
from rechub_core.layers.crossed import CrossedIds
from rechub_core.layers.embedding import FlatInput
from rechub_core.layers.mlp import MLP
from rechub_core.models.config import require_dropout, require_layers, require_positive
from rechub_core.models.ranking.linear import FirstOrder


@dataclass
class WideDeepConfig:
    name: Literal["widedeep"] = "widedeep"
    embed_dim: int = 16
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    # feature names crossed in the wide part, each cross two or more sparse features of ``groups``
    crosses: list[list[str]] = field(default_factory=lambda: [["gender", "category"], ["age_bucket", "price_bucket"]])
    cross_buckets: int = 1_000_000  # rows per cross: exact ids up to this many combinations, hashed beyond
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim)
        require_dropout(self.dropout)
        require_positive(cross_buckets=self.cross_buckets)
        seen = set()
        for names in self.crosses:
            if len(set(names)) < 2 or len(set(names)) != len(names):
                raise ValueError(f"each cross needs two or more distinct features, got {names}")
            if frozenset(names) in seen:
                raise ValueError(f"cross {names} is listed twice")
            seen.add(frozenset(names))


class WideDeep(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> schema = Schema({"user": (SparseFeature("gender", 3),), "item": (SparseFeature("category", 5),)})
    >>> model = WideDeep(schema, WideDeepConfig(embed_dim=4, mlp_dims=[8], crosses=[["gender", "category"]]))
    >>> model({"gender": torch.tensor([1, 2]), "category": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: WideDeepConfig):
        super().__init__()
        features = schema.features(*config.groups)
        self.first_order = FirstOrder(features)
        self.crossed = None
        if config.crosses:
            self.crossed = CrossedIds(_cross_features(features, config), config.cross_buckets)
            self.cross_weights = nn.Embedding(self.crossed.num_ids, 1)  # w for φ(x), all crosses in one table
            nn.init.zeros_(self.cross_weights.weight)
        self.input = FlatInput(features, config.embed_dim)
        self.deep = MLP(self.input.output_dim, config.mlp_dims, dropout=config.dropout, output_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        wide = self.first_order(batch)  # (B,)
        if self.crossed is not None:
            ids = self.crossed(batch) + self.crossed.offsets  # (B, C)
            wide = wide + self.cross_weights(ids).sum(dim=(1, 2))  # (B, C, 1) -> (B,)
        return wide + self.deep(self.input(batch)).squeeze(-1)  # (B,)


def _cross_features(features, config: WideDeepConfig) -> list[list[SparseFeature]]:
    """The crosses' member features, or ValueError naming one that is not a sparse feature of the groups."""
    by_name = {f.name: f for f in sparse(features)}
    for names in config.crosses:
        for name in names:
            if name not in by_name:
                raise ValueError(
                    f"cross {names}: {name!r} is not a sparse feature of groups {config.groups} "
                    f"(sparse features: {sorted(by_name)})"
                )
    return [[by_name[n] for n in names] for names in config.crosses]
