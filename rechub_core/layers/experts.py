"""Mixtures of experts for multi-task models.

``Experts`` runs E MLP experts on one input and stacks their outputs; ``gate``
mixes them with softmax weights (Jacobs et al., "Adaptive Mixtures of Local
Experts", 1991, as used by Ma et al.'s MMoE, KDD 2018). ``ExtractionLevel`` is
one extraction level of Tang et al., "Progressive Layered Extraction (PLE)",
RecSys 2020: task-specific and shared experts, one gate per task over its own
and the shared experts (Customized Gate Control, Sec. 4.3) and, below the top
level, a shared gate over all experts (Sec. 4.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rechub_core.layers.mlp import MLP


class Experts(nn.ModuleList):
    """E MLP experts on the same input, ``(B, d_in) -> (B, E, d)``; expert ``e`` is ``out[:, e]``.

    >>> Experts(8, 3, [16, 4])(torch.zeros(2, 8)).shape
    torch.Size([2, 3, 4])
    """

    def __init__(self, input_dim: int, num_experts: int, hidden_dims: Sequence[int], *, dropout: float = 0.0):
        super().__init__(MLP(input_dim, hidden_dims, dropout=dropout) for _ in range(num_experts))
        self.output_dim = hidden_dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([expert(x) for expert in self], dim=1)  # (B, E, d)


def gate(logits: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Softmax over a gate's logits ``(B, E)``, then the weighted sum of ``experts`` ``(B, E, d) -> (B, d)``.

    >>> gate(torch.tensor([[0.0, 0.0]]), torch.tensor([[[1.0, 0.0], [3.0, 2.0]]]))
    tensor([[2., 1.]])
    """
    weights = torch.softmax(logits, dim=-1).unsqueeze(-1)  # (B, E, 1)
    return (weights * experts).sum(dim=1)  # (B, d)


class ExtractionLevel(nn.Module):
    """One PLE level: T task inputs and a shared input, each ``(B, d_in)``, to T task outputs ``(B, d)``
    and, with ``shared_gate``, a shared output ``(B, d)`` (else ``None``).

    Task k's experts read task k's input and the shared experts the shared input; task k's gate, on
    task k's input, mixes task k's experts and the shared ones; the shared gate, on the shared input,
    mixes every expert of the level. Alone, with all inputs equal, the level is a CGC.
    """

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        num_task_experts: int,
        num_shared_experts: int,
        expert_dims: Sequence[int],
        *,
        dropout: float = 0.0,
        shared_gate: bool = False,
    ):
        super().__init__()
        self.task_experts = nn.ModuleList(
            Experts(input_dim, num_task_experts, expert_dims, dropout=dropout) for _ in range(num_tasks)
        )
        self.shared_experts = Experts(input_dim, num_shared_experts, expert_dims, dropout=dropout)
        own_and_shared = num_task_experts + num_shared_experts
        self.task_gates = nn.ModuleList(nn.Linear(input_dim, own_and_shared) for _ in range(num_tasks))
        every = num_tasks * num_task_experts + num_shared_experts
        self.shared_gate = nn.Linear(input_dim, every) if shared_gate else None
        self.output_dim = self.shared_experts.output_dim

    def forward(
        self, tasks: Sequence[torch.Tensor], shared: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        common = self.shared_experts(shared)  # (B, Es, d)
        own = [experts(x) for experts, x in zip(self.task_experts, tasks)]  # T × (B, Ek, d)
        outputs = [
            gate(task_gate(x), torch.cat([mine, common], dim=1))  # (B, Ek + Es, d) -> (B, d)
            for task_gate, x, mine in zip(self.task_gates, tasks, own)
        ]
        if self.shared_gate is None:
            return outputs, None
        every = torch.cat([*own, common], dim=1)  # (B, T*Ek + Es, d)
        return outputs, gate(self.shared_gate(shared), every)  # (B, d)
