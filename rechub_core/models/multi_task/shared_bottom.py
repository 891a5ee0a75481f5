"""Shared-Bottom: hard parameter sharing.

Caruana, "Multitask Learning", Machine Learning 28(1), 1997. One bottom MLP
over the input is shared by all tasks; each task reads its output with a tower
of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers import MLP, FlatInput
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class SharedBottomConfig:
    name: Literal["shared_bottom"] = "shared_bottom"
    embed_dim: int = 16
    bottom_dims: list[int] = field(default_factory=lambda: [128])
    tower_dims: list[int] = field(default_factory=lambda: [64])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_positive(embed_dim=self.embed_dim)
        require_layers(bottom_dims=self.bottom_dims, tower_dims=self.tower_dims, groups=self.groups)
        require_dropout(self.dropout)


class SharedBottom(nn.Module):
    """``forward(batch) -> (B, T)`` logits, one column per task."""

    def __init__(self, schema: Schema, config: SharedBottomConfig, num_tasks: int):
        super().__init__()
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        self.bottom = MLP(self.input.output_dim, config.bottom_dims, dropout=config.dropout)
        self.towers = nn.ModuleList(
            MLP(self.bottom.output_dim, config.tower_dims, dropout=config.dropout, output_dim=1)
            for _ in range(num_tasks)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        shared = self.bottom(self.input(batch))  # (B, d_bottom)
        return torch.cat([tower(shared) for tower in self.towers], dim=1)  # T × (B, 1) -> (B, T)
