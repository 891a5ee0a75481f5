"""A neural Turing machine memory, as MIMN's User Interest Center keeps one per user.

Graves et al. ("Neural Turing Machines", arXiv 1410.5401, 2014, Sec. 3) and
Pi et al. (MIMN, KDD 2019, Sec. 4.2). A memory ``M`` of ``m`` slots of width
``D`` is driven by a controller (a GRU) that reads one behaviour per step:
- content addressing: ``w(i) = softmax_i(β · cos(k, M(i)))`` for a key ``k``
  and a key strength ``β ≥ 0`` emitted by the controller;
- write: ``M ← M ⊙ (1 - w eᵀ) + w aᵀ`` with an erase vector ``e ∈ (0, 1)^D``
  and an add vector ``a ∈ (-1, 1)^D``;
- read: ``r = wᵀ M``, fed back to the controller at the next step.
MIMN addresses by content only (no location shifts). It rebalances the write
weights with its memory utilisation regularisation (Sec. 4.2.2): with
``g_t = Σ_{c ≤ t} w̃_c`` the accumulated original write weights,
``P_t = softmax(W_g g_t)`` (an ``m × m`` matrix, softmax over each row) and the
write uses ``w_t = w̃_t P_t``; the model adds a loss on the variance across slots
of ``Σ_t w_t`` (``utilization``). Here ``W_g`` reads the *mean* write weight so
far, ``g_t / t`` (the paper uses the sum; the mean keeps its logits at the
same scale whatever the sequence length), and starts near the identity.

Each step writes with the current behaviour, then reads the memory it just
wrote (as in Graves et al.). A padding step changes nothing: the state is
carried through unchanged (``torch.where``, no data-dependent control flow, so
a step loop unrolls at ONNX export).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def content_addressing(
    key: torch.Tensor, strength: torch.Tensor, memory: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """``softmax_i(β · cos(k, M(i)))``: key ``(S, D)``, strength ``(S, 1)``, memory ``(S, m, D)`` → ``(S, m)``."""
    dot = (memory * key.unsqueeze(1)).sum(dim=-1)  # (S, m); elementwise: faster than bmm at these tiny sizes
    norms = memory.norm(dim=-1) * key.norm(dim=-1, keepdim=True)  # (S, m)
    return torch.softmax(strength * dot / norms.clamp(min=eps), dim=-1)


def read(weights: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """``wᵀ M``: weights ``(S, m)``, memory ``(S, m, D)`` → ``(S, D)``."""
    return (weights.unsqueeze(-1) * memory).sum(dim=1)


def write(memory: torch.Tensor, weights: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """``M ⊙ (1 - w eᵀ) + w aᵀ``: memory ``(S, m, D)``, weights ``(S, m)``, erase and add ``(S, D)``."""
    w = weights.unsqueeze(-1)  # (S, m, 1)
    return memory * (1 - w * erase.unsqueeze(1)) + w * add.unsqueeze(1)  # (S, m, D)


class NTMState(NamedTuple):
    controller: torch.Tensor  # (S, H) the controller GRU's state
    memory: torch.Tensor  # (S, m, D)
    read: torch.Tensor  # (S, D) the last read vector
    usage: torch.Tensor  # (S, m) accumulated original write weights g_t
    steps: torch.Tensor  # (S, 1) real steps so far


class NTMStep(NamedTuple):
    read_weights: torch.Tensor  # (S, m), zero at padding
    write_weights: torch.Tensor  # (S, m) rebalanced, zero at padding


class NTMMemory(nn.Module):
    """``step(x (S, D_in), real (S,), state) -> (state, NTMStep)``; ``initial_state(S)`` to start.

    >>> ntm = NTMMemory(input_dim=3, memory_dim=4, slots=2, controller_dim=5)
    >>> state = ntm.initial_state(2)
    >>> state, out = ntm.step(torch.randn(2, 3), torch.tensor([True, False]), state)
    >>> state.memory.shape, out.read_weights.sum(-1).tolist(), bool((state.memory[1] == ntm.memory[0]).all())
    (torch.Size([2, 2, 4]), [1.0, 0.0], True)
    """

    def __init__(self, input_dim: int, memory_dim: int, slots: int, controller_dim: int):
        super().__init__()
        if min(input_dim, memory_dim, slots, controller_dim) < 1:
            raise ValueError(
                f"input_dim, memory_dim, slots and controller_dim must be at least 1, "
                f"got {input_dim}, {memory_dim}, {slots}, {controller_dim}"
            )
        self.memory_dim, self.slots = memory_dim, slots
        self.controller = nn.GRUCell(input_dim + memory_dim, controller_dim)
        # read key, write key, erase, add (D each) and the two key strengths
        self.heads = nn.Linear(controller_dim, 4 * memory_dim + 2)
        # the memory every sequence starts from (distinct directions, so content addressing can tell slots apart)
        self.memory = nn.Parameter(torch.randn(1, slots, memory_dim) * 0.1)  # (1, m, D)
        self.transfer = nn.Linear(slots, slots * slots)  # W_g: mean usage → the m × m transfer logits
        nn.init.zeros_(self.transfer.weight)
        with torch.no_grad():
            self.transfer.bias.copy_(3.0 * torch.eye(slots).flatten())  # P starts near the identity

    def initial_state(self, batch_size: int) -> NTMState:
        ref = self.memory
        zeros = lambda *shape: torch.zeros(batch_size, *shape, dtype=ref.dtype, device=ref.device)  # noqa: E731
        return NTMState(
            controller=zeros(self.controller.hidden_size),
            memory=ref.expand(batch_size, -1, -1),
            read=zeros(self.memory_dim),
            usage=zeros(self.slots),
            steps=zeros(1),
        )

    def rebalance(self, weights: torch.Tensor, usage: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """``w̃ P`` with ``P = softmax(W_g (g / t))`` row by row: weights, usage ``(S, m)``, steps ``(S, 1)``."""
        s, m = weights.shape
        transfer = torch.softmax(self.transfer(usage / steps.clamp(min=1)).reshape(s, m, m), dim=-1)  # (S, m, m)
        return (weights.unsqueeze(-1) * transfer).sum(dim=1)  # (S, m): the row vector w̃ times P

    def step(self, x: torch.Tensor, real: torch.Tensor, state: NTMState) -> tuple[NTMState, NTMStep]:
        d = self.memory_dim
        h = self.controller(torch.cat([x, state.read], dim=-1), state.controller)  # (S, H)
        out = self.heads(h)  # (S, 4D + 2)
        read_key, write_key, erase, add = out[:, :d], out[:, d : 2 * d], out[:, 2 * d : 3 * d], out[:, 3 * d : 4 * d]
        read_strength, write_strength = F.softplus(out[:, 4 * d :]).split(1, dim=-1)  # (S, 1) each
        original = content_addressing(write_key, write_strength, state.memory)  # (S, m)
        usage = state.usage + original
        steps = state.steps + 1
        write_weights = self.rebalance(original, usage, steps)  # (S, m)
        memory = write(state.memory, write_weights, torch.sigmoid(erase), torch.tanh(add))  # (S, m, D)
        read_weights = content_addressing(read_key, read_strength, memory)  # (S, m)
        r = read(read_weights, memory)  # (S, D)
        keep = real.unsqueeze(-1)  # (S, 1): padding keeps the previous state
        new = NTMState(
            controller=torch.where(keep, h, state.controller),
            memory=torch.where(keep.unsqueeze(-1), memory, state.memory),
            read=torch.where(keep, r, state.read),
            usage=torch.where(keep, usage, state.usage),
            steps=torch.where(keep, steps, state.steps),
        )
        on = keep.to(read_weights.dtype)
        return new, NTMStep(read_weights=read_weights * on, write_weights=write_weights * on)
