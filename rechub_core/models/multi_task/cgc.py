"""CGC: Customized Gate Control, a single PLE extraction level.

Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning
(MTL) Model for Personalized Recommendations", RecSys 2020 (Sec. 4.3, Fig. 4).
Each task has experts of its own and all tasks share some; task k's gate, on
the input, mixes task k's experts and the shared ones, and task k's tower reads
that mixture. Built as the one-level ``PLE``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from rechub_core.features import Group, Schema
from rechub_core.models.multi_task.ple import PLE, PLEConfig


@dataclass
class CGCConfig:
    name: Literal["cgc"] = "cgc"
    embed_dim: int = 16
    num_task_experts: int = 2  # experts of each task
    num_shared_experts: int = 2
    expert_dims: list[int] = field(default_factory=lambda: [128])
    tower_dims: list[int] = field(default_factory=lambda: [64])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        self.as_ple()  # PLEConfig's checks, which name the same fields

    def as_ple(self) -> PLEConfig:
        """The same model as a one-level PLE."""
        return PLEConfig(**dict(asdict(self), name="ple", num_levels=1))


class CGC(PLE):
    """``forward(batch) -> (B, T)`` logits, one column per task."""

    def __init__(self, schema: Schema, config: CGCConfig, num_tasks: int):
        super().__init__(schema, config.as_ple(), num_tasks)
