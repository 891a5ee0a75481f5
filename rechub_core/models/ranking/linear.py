"""Logistic regression on the raw features: the baseline every ranker must beat.

A weight per id of every sparse feature, the mean of the weights of a
sequence's ids, and a weight per dense column, summed into one logit. No
interactions between features, by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Feature, Group, Schema, dense
from rechub_core.layers import FeatureEmbedding, stack_dense


class FirstOrder(nn.Module):
    """``Σ w[id] + w·dense + b``, ``batch -> (B,)``."""

    def __init__(self, features: tuple[Feature, ...]):
        super().__init__()
        self.weights = FeatureEmbedding(features, dim=1)
        nn.init.zeros_(self.weights.table.weight)
        self.dense_names = [f.name for f in dense(features)]
        self.dense = nn.Linear(len(self.dense_names), 1) if self.dense_names else None
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.weights(batch).sum(dim=(1, 2)) + self.bias  # (B,)
        if self.dense is not None:
            out = out + self.dense(stack_dense(batch, self.dense_names)).squeeze(-1)
        return out


@dataclass
class LogisticRegressionConfig:
    name: Literal["lr"] = "lr"
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])


class LogisticRegression(nn.Module):
    """``forward(batch) -> (B,)`` logits of a first-order model."""

    def __init__(self, schema: Schema, config: LogisticRegressionConfig):
        super().__init__()
        self.first_order = FirstOrder(schema.features(*config.groups))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.first_order(batch)
