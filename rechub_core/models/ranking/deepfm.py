"""DeepFM.

Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI 2017. First-order weights, an FM second-order term and an
MLP, the FM and MLP sharing one embedding of every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers import MLP, FactorizationMachine, FeatureEmbedding, stack_dense
from rechub_core.models.config import require_layers
from rechub_core.models.ranking.linear import FirstOrder


@dataclass
class DeepFMConfig:
    name: Literal["deepfm"] = "deepfm"
    embed_dim: int = 16
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)


class DeepFM(nn.Module):
    """``forward(batch) -> (B,)`` logits."""

    def __init__(self, schema: Schema, config: DeepFMConfig):
        super().__init__()
        features = schema.features(*config.groups)
        self.first_order = FirstOrder(features)
        self.embedding = FeatureEmbedding(features, config.embed_dim)
        self.fm = FactorizationMachine()
        self.dense_names = self.first_order.dense_names
        deep_in = self.embedding.num_fields * config.embed_dim + len(self.dense_names)
        self.deep = MLP(deep_in, config.mlp_dims, dropout=config.dropout, output_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embedding(batch)  # (B, F, D)
        deep_in = fields.flatten(start_dim=1)  # (B, F*D)
        if self.dense_names:
            deep_in = torch.cat([deep_in, stack_dense(batch, self.dense_names)], dim=1)  # (B, F*D + Fd)
        return self.first_order(batch) + self.fm(fields) + self.deep(deep_in).squeeze(-1)  # (B,)
