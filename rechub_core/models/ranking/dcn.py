"""Deep & Cross Network (DCN).

Wang et al., "Deep & Cross Network for Ad Click Predictions", ADKDD 2017.
The stacked input ``x0`` (every field's embedding and the dense columns,
flattened; ``FlatInput``) feeds two networks in parallel: a cross network of
vector cross layers ``x_{l+1} = x0 (x_l^T w_l) + b_l + x_l`` (``CrossNet``),
which holds every cross of ``x0``'s entries up to degree ``L + 1`` with
``O(d)`` weights per layer, and a ReLU MLP. Their outputs are concatenated and
one linear layer gives the logit (the paper's combination layer).

Departures from the paper: it sizes each categorical embedding as
``6 · cardinality^{1/4}``, here every field has ``embed_dim`` (one fused
table); it applies batch normalisation in the deep network, here the MLP has
none. No dropout by default: the paper regularises by early stopping
alone, reporting that neither L2 nor dropout helped. The paper searched 1 to 6
cross layers; 3 is the default here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.cross import CrossNet
from rechub_core.layers.embedding import FlatInput
from rechub_core.layers.mlp import MLP
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class DCNConfig:
    name: Literal["dcn"] = "dcn"
    embed_dim: int = 16
    num_cross_layers: int = 3
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.0
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim, num_cross_layers=self.num_cross_layers)
        require_dropout(self.dropout)


class DCN(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 7),)})
    >>> model = DCN(schema, DCNConfig(embed_dim=4, mlp_dims=[8]))
    >>> model({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: DCNConfig):
        super().__init__()
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        d = self.input.output_dim
        self.cross = CrossNet(d, config.num_cross_layers)
        self.deep = MLP(d, config.mlp_dims, dropout=config.dropout)
        self.head = nn.Linear(d + self.deep.output_dim, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.input(batch)  # (B, d)
        out = torch.cat([self.cross(x0), self.deep(x0)], dim=1)  # (B, d + H)
        return self.head(out).squeeze(-1)  # (B,)
