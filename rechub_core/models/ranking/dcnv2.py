"""DCN-V2.

Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for
Web-scale Learning to Rank Systems", WWW 2021. A cross network of matrix cross
layers ``x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l`` (full ``W_l``, or a mixture of
low-rank experts) and an MLP over the same input ``x0`` (every field's
embedding and the dense columns, flattened), either stacked (cross → MLP) or
in parallel (both outputs concatenated), then one linear logit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers import MLP, CrossNetV2, FlatInput, LowRankMixtureCross
from rechub_core.models.config import require_layers


@dataclass
class DCNV2Config:
    name: Literal["dcnv2"] = "dcnv2"
    embed_dim: int = 16
    num_cross_layers: int = 3
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    structure: Literal["stacked", "parallel"] = "parallel"
    low_rank: int | None = None  # None: full d × d cross matrices; r: a mixture of rank-r experts
    num_experts: int = 1  # experts per low-rank cross layer; needs low_rank
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        if self.embed_dim < 1 or self.num_cross_layers < 1:
            raise ValueError("embed_dim and num_cross_layers must be at least 1")
        if self.structure not in ("stacked", "parallel"):
            raise ValueError(f"structure must be 'stacked' or 'parallel', got {self.structure!r}")
        if self.low_rank is not None and self.low_rank < 1:
            raise ValueError(f"low_rank must be at least 1 (or null for full-rank cross layers), got {self.low_rank}")
        if self.num_experts < 1:
            raise ValueError(f"num_experts must be at least 1, got {self.num_experts}")
        if self.num_experts > 1 and self.low_rank is None:
            raise ValueError("num_experts > 1 needs low_rank: experts are low-rank cross layers")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class DCNV2(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 7),)})
    >>> model = DCNV2(schema, DCNV2Config(embed_dim=4, mlp_dims=[8], low_rank=2, num_experts=2))
    >>> model({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: DCNV2Config):
        super().__init__()
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        d = self.input.output_dim
        if config.low_rank is None:
            self.cross = CrossNetV2(d, config.num_cross_layers)
        else:
            self.cross = LowRankMixtureCross(d, config.num_cross_layers, config.low_rank, config.num_experts)
        self.deep = MLP(d, config.mlp_dims, dropout=config.dropout)
        self.stacked = config.structure == "stacked"
        head_in = self.deep.output_dim if self.stacked else d + self.deep.output_dim
        self.head = nn.Linear(head_in, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.input(batch)  # (B, d)
        if self.stacked:
            out = self.deep(self.cross(x0))  # (B, H)
        else:
            out = torch.cat([self.cross(x0), self.deep(x0)], dim=1)  # (B, d + H)
        return self.head(out).squeeze(-1)  # (B,)
