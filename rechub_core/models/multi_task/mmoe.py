"""MMoE: multi-gate mixture-of-experts.

Ma et al., "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018. Shared experts over the input; each
task mixes them with its own softmax gate and reads the mixture with its tower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers import MLP, Experts, FlatInput, gate
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class MMoEConfig:
    name: Literal["mmoe"] = "mmoe"
    embed_dim: int = 16
    num_experts: int = 4
    expert_dims: list[int] = field(default_factory=lambda: [128])
    tower_dims: list[int] = field(default_factory=lambda: [64])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_positive(embed_dim=self.embed_dim, num_experts=self.num_experts)
        require_layers(expert_dims=self.expert_dims, tower_dims=self.tower_dims, groups=self.groups)
        require_dropout(self.dropout)


class MMoE(nn.Module):
    """``forward(batch) -> (B, T)`` logits, one column per task."""

    one_gate = False  # MoE: a single gate's mixture feeds every tower

    def __init__(self, schema: Schema, config: MMoEConfig, num_tasks: int):
        super().__init__()
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        d_in = self.input.output_dim
        self.experts = Experts(d_in, config.num_experts, config.expert_dims, dropout=config.dropout)
        self.gates = nn.ModuleList(nn.Linear(d_in, config.num_experts) for _ in range(1 if self.one_gate else num_tasks))
        d_expert = self.experts.output_dim
        self.towers = nn.ModuleList(
            MLP(d_expert, config.tower_dims, dropout=config.dropout, output_dim=1) for _ in range(num_tasks)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.input(batch)  # (B, d_in)
        experts = self.experts(x)  # (B, E, d_expert)
        mixed = [gate(g(x), experts) for g in self.gates]  # T (or 1) × (B, d_expert)
        logits = [tower(mixed[0 if self.one_gate else t]) for t, tower in enumerate(self.towers)]  # T × (B, 1)
        return torch.cat(logits, dim=1)  # (B, T)
