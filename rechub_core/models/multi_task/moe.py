"""MoE (One-gate MoE, OMoE): experts mixed by one gate shared by all tasks.

The one-gate baseline of Ma et al., "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts", KDD 2018 (Sec. 4.2, Fig. 1b):
experts over the input, a single softmax gate on the input mixes them, and
every task's tower reads the same mixture. MMoE gives each task its own gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rechub_core.models.multi_task.mmoe import MMoE, MMoEConfig


@dataclass
class MoEConfig(MMoEConfig):
    """MMoE's settings; only the gating differs."""

    name: Literal["moe"] = "moe"


class MoE(MMoE):
    """``forward(batch) -> (B, T)`` logits: MMoE's experts and towers, one gate (``gates[0]``) for all tasks."""

    one_gate = True
