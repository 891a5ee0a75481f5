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
from rechub_core.layers import MLP, FlatInput
from rechub_core.models.config import require_layers


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
        require_layers(expert_dims=self.expert_dims, groups=self.groups)
        if self.num_experts < 1:
            raise ValueError("num_experts must be at least 1")


class MMoE(nn.Module):
    """``forward(batch) -> (B, T)`` logits, one column per task."""

    def __init__(self, schema: Schema, config: MMoEConfig, num_tasks: int):
        super().__init__()
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        d_in = self.input.output_dim
        self.experts = nn.ModuleList(
            MLP(d_in, config.expert_dims, dropout=config.dropout) for _ in range(config.num_experts)
        )
        self.gates = nn.ModuleList(nn.Linear(d_in, config.num_experts) for _ in range(num_tasks))
        d_expert = config.expert_dims[-1]
        self.towers = nn.ModuleList(
            MLP(d_expert, config.tower_dims, dropout=config.dropout, output_dim=1) for _ in range(num_tasks)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.input(batch)  # (B, d_in)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, d_expert)
        logits = []
        for gate, tower in zip(self.gates, self.towers):
            weights = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # (B, E, 1)
            mixed = (weights * experts).sum(dim=1)  # (B, d_expert)
            logits.append(tower(mixed))  # (B, 1)
        return torch.cat(logits, dim=1)  # (B, T)
