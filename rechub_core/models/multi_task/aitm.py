"""AITM: Adaptive Information Transfer Multi-task framework.

Xi, Chen, Yan, Zhang, Zhu, Zhuang and Chen, "Modeling the Sequential
Dependence among Audience Multi-step Conversions with Multi-task Learning in
Targeted Display Advertising", KDD 2021.

As in the paper (Sec. 3): one embedding lookup shared by the tasks, each task
with its own tower giving ``q_t``. The Adaptive Information Transfer (AIT)
module carries the funnel forward: the information transferred from task
``t-1`` is ``p_{t-1} = g_{t-1}(z_{t-1})`` (a one-layer MLP), and

    z_t = sum_{u in {p_{t-1}, q_t}} w_u h3(u),
    w_u = softmax_u(<h1(u), h2(u)> / sqrt(k)),

with ``h1, h2, h3`` linear projections of width ``k`` (the towers' output
width) and ``z_1 = q_1``; each task's output layer maps ``z_t`` to its logit.
The Behavioural Expectation Calibrator adds
``alpha * sum_t mean(max(σ(y_t) - σ(y_{t-1}), 0))`` to the loss, penalising a
later stage predicted likelier than the one before it
(``logits_and_auxiliary_loss``; ``alpha`` = ``calibrator_weight``, 0.6 as in
the paper's experiments).

As in the authors' code, ``h1, h2, h3`` are bias-free and one set serves every
transfer; ``g_{t-1}`` is per transfer. With two tasks ``z_1 = q_1``, so the
transfer reads the first tower's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers import MLP, FlatInput
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class AITMConfig:
    name: Literal["aitm"] = "aitm"
    embed_dim: int = 16
    tower_dims: list[int] = field(default_factory=lambda: [128, 64, 32])  # the last is k, the AIT width
    calibrator_weight: float = 0.6  # alpha of the Behavioural Expectation Calibrator; 0 leaves it out
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(tower_dims=self.tower_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim)
        require_dropout(self.dropout)
        if self.calibrator_weight < 0:
            raise ValueError(f"calibrator_weight must not be negative, got {self.calibrator_weight}")


def expectation_calibration(logits: torch.Tensor) -> torch.Tensor:
    """``sum_t mean_b max(σ(y_t) - σ(y_{t-1}), 0)`` of ``(B, T)`` logits in funnel order: a scalar."""
    probs = torch.sigmoid(logits)  # (B, T)
    excess = torch.relu(probs[:, 1:] - probs[:, :-1])  # (B, T-1)
    return excess.mean(dim=0).sum()


class InformationTransfer(nn.Module):
    """AIT: attention over the two candidates ``q_t`` (this task's tower) and ``p_{t-1}`` (transferred)."""

    def __init__(self, dim: int):
        super().__init__()
        self.h1 = nn.Linear(dim, dim, bias=False)
        self.h2 = nn.Linear(dim, dim, bias=False)
        self.h3 = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(dim)

    def weights(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` softmax weights of ``q`` and ``p`` (each ``(B, k)``)."""
        candidates = torch.stack([q, p], dim=1)  # (B, 2, k)
        scores = (self.h1(candidates) * self.h2(candidates)).sum(dim=-1) * self.scale  # (B, 2)
        return torch.softmax(scores, dim=1)

    def forward(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        candidates = torch.stack([q, p], dim=1)  # (B, 2, k)
        weights = self.weights(q, p).unsqueeze(-1)  # (B, 2, 1)
        return (weights * self.h3(candidates)).sum(dim=1)  # (B, k)


class AITM(nn.Module):
    """``forward(batch) -> (B, T)`` logits; ``logits_and_auxiliary_loss(batch)`` adds the weighted calibrator."""

    funnel = True

    def __init__(self, schema: Schema, config: AITMConfig, num_tasks: int):
        super().__init__()
        if num_tasks < 2:
            raise ValueError(f"AITM transfers between funnel stages: num_tasks must be at least 2, got {num_tasks}")
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        k = config.tower_dims[-1]
        self.towers = nn.ModuleList(
            MLP(self.input.output_dim, config.tower_dims, dropout=config.dropout) for _ in range(num_tasks)
        )
        self.transfers = nn.ModuleList(MLP(k, [k], dropout=config.dropout) for _ in range(num_tasks - 1))  # g_t
        self.ait = InformationTransfer(k)
        self.heads = nn.ModuleList(nn.Linear(k, 1) for _ in range(num_tasks))
        self.calibrator_weight = config.calibrator_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.input(batch)  # (B, d_in): the shared embedding lookup
        z = self.towers[0](x)  # (B, k): z_1 = q_1
        logits = [self.heads[0](z)]  # (B, 1)
        for t in range(1, len(self.towers)):
            z = self.ait(self.towers[t](x), self.transfers[t - 1](z))  # (B, k): AIT(q_t, p_{t-1})
            logits.append(self.heads[t](z))  # (B, 1)
        return torch.cat(logits, dim=1)  # (B, T)

    def logits_and_auxiliary_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)  # (B, T)
        if self.calibrator_weight == 0:
            return logits, logits.new_zeros(())
        return logits, self.calibrator_weight * expectation_calibration(logits)
