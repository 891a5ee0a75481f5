"""PLE: Progressive Layered Extraction.

Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning
(MTL) Model for Personalized Recommendations", RecSys 2020 (Sec. 4.4, Fig. 5).
Stacked extraction levels of task-specific and shared experts: below the top
level, each task's gate mixes its own and the shared experts into that task's
input of the next level, and a shared gate mixes all experts into the next
level's shared input; the top level has only the task gates, whose outputs
the towers read. With one level it is CGC (``rechub_core.models.multi_task.cgc``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers import MLP, ExtractionLevel, FlatInput
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class PLEConfig:
    name: Literal["ple"] = "ple"
    embed_dim: int = 16
    num_levels: int = 2
    num_task_experts: int = 2  # experts of each task, in each level
    num_shared_experts: int = 2  # shared experts, in each level
    expert_dims: list[int] = field(default_factory=lambda: [128])
    tower_dims: list[int] = field(default_factory=lambda: [64])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_positive(
            embed_dim=self.embed_dim,
            num_levels=self.num_levels,
            num_task_experts=self.num_task_experts,
            num_shared_experts=self.num_shared_experts,
        )
        require_layers(expert_dims=self.expert_dims, tower_dims=self.tower_dims, groups=self.groups)
        require_dropout(self.dropout)


class PLE(nn.Module):
    """``forward(batch) -> (B, T)`` logits, one column per task."""

    def __init__(self, schema: Schema, config: PLEConfig, num_tasks: int):
        super().__init__()
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        d_expert = config.expert_dims[-1]
        self.levels = nn.ModuleList(
            ExtractionLevel(
                self.input.output_dim if level == 0 else d_expert,
                num_tasks,
                config.num_task_experts,
                config.num_shared_experts,
                config.expert_dims,
                dropout=config.dropout,
                shared_gate=level < config.num_levels - 1,
            )
            for level in range(config.num_levels)
        )
        self.towers = nn.ModuleList(
            MLP(d_expert, config.tower_dims, dropout=config.dropout, output_dim=1) for _ in range(num_tasks)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        shared = self.input(batch)  # (B, d_in)
        tasks = [shared] * len(self.towers)  # T × (B, d_in): every task starts from the input
        for level in self.levels:
            tasks, shared = level(tasks, shared)  # T × (B, d_expert); (B, d_expert), None after the top level
        return torch.cat([tower(x) for tower, x in zip(self.towers, tasks)], dim=1)  # T × (B, 1) -> (B, T)
