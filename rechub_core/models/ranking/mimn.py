"""MIMN.

Pi, Bian, Zhou, Zhu and Gai, "Practice on Long Sequential User Behavior
Modeling for Click-Through Rate Prediction", KDD 2019.

Implemented as in the paper (Sec. 4.2):
- The UIC memory: a neural Turing machine (``rechub_core.layers.ntm``) with
  ``memory_slots`` slots as wide as a behaviour's embedding (item and category,
  from the tables the target uses), a GRU controller reading the behaviours
  oldest to newest, content-addressed read and write heads (key strength ×
  cosine, softmax over slots), erase and add vectors, and the memory
  utilisation regularisation: write weights rebalanced by a transfer matrix
  of the slots' usage so far, and an auxiliary loss (``utilization_weight`` ×
  the variance across slots of each row's write weights, returned by
  ``logits_and_auxiliary_loss``) that keeps the slots used evenly.
- The Memory Induction Unit: per slot a channel state, updated at each step by
  one GRU (shared by all channels) from the slot's new content and the
  behaviour, for the ``induction_top_k`` slots the NTM read most at that step
  (the paper selects them by the NTM's read weight ``w_t^r``); the other
  channels keep their state.
- At the end the target item reads the memory and the induction channels
  (target attention over the slots), and both join the other fields'
  embeddings and the dense features in an MLP to the logit. The short history
  (``hist``, ``hist_category``) is one of those fields, mean-pooled; the time
  columns (``hist_dt``, ``long_dt``) are not read, the memory has no time input.

Departures: the paper's UIC server updates each user's memory incrementally,
one behaviour event at a time, which is how serving would afford a long log.
A model that recomputes the memory per batch has to step through the window,
so it reads only the most recent ``memory_len`` behaviours of the long window
(default 50 of the 1,000 in the built-in data): a step loop (unrolled at ONNX
export) over the whole window would be very slow to train on a CPU. The loop
has no data-dependent control flow; a padding step leaves the controller, the
memory and every channel unchanged. The utilisation loss is on the mean write
weight per slot (the paper's sum divided by the number of real behaviours), so
its weight does not depend on the window's length; the transfer matrix reads
the mean usage so far for the same reason (see ``rechub_core.layers.ntm``). The
defaults of ``utilization_weight`` and ``induction_top_k`` are this
implementation's choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.behavior import LONG, BehaviorInputs
from rechub_core.layers.mlp import MLP
from rechub_core.layers.ntm import NTMMemory
from rechub_core.layers.target_attention import MultiHeadTargetAttention
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class MIMNConfig:
    name: Literal["mimn"] = "mimn"
    embed_dim: int = 16
    memory_slots: int = 4  # m: NTM memory slots (and induction channels)
    controller_dim: int = 64  # the controller GRU's state
    induction_top_k: int = 2  # channels the Memory Induction Unit updates per step
    memory_len: int = 50  # the most recent long-window behaviours the memory reads
    utilization_weight: float = 0.1  # weight of the memory utilisation loss; 0 leaves it out
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item", "behavior", "long"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(
            embed_dim=self.embed_dim,
            memory_slots=self.memory_slots,
            controller_dim=self.controller_dim,
            induction_top_k=self.induction_top_k,
            memory_len=self.memory_len,
        )
        if self.induction_top_k > self.memory_slots:
            raise ValueError(
                f"induction_top_k ({self.induction_top_k}) cannot exceed memory_slots ({self.memory_slots})"
            )
        if self.utilization_weight < 0:
            raise ValueError(f"utilization_weight must be non-negative, got {self.utilization_weight}")
        require_dropout(self.dropout)
        missing = [g for g in ("item", "long") if g not in self.groups]
        if missing:
            raise ValueError(f"MIMN reads the target item and the long window: groups must include {missing}")


class MemoryInduction(nn.Module):
    """One step of the Memory Induction Unit: channels ``(B, m, D)`` → channels.

    ``S(i) ← GRU(S(i), [M(i), e])`` for the ``top_k`` slots with the largest
    read weights, at real steps only; one GRU serves every channel.
    """

    def __init__(self, memory_dim: int, input_dim: int, top_k: int):
        super().__init__()
        self.gru = nn.GRUCell(memory_dim + input_dim, memory_dim)
        self.top_k = top_k

    def forward(
        self,
        channels: torch.Tensor,
        memory: torch.Tensor,
        x: torch.Tensor,
        read_weights: torch.Tensor,
        real: torch.Tensor,
    ) -> torch.Tensor:
        b, _, d = memory.shape
        top = torch.topk(read_weights, self.top_k, dim=1).indices  # (B, K): the slots read most
        at = top.unsqueeze(-1).expand(-1, -1, d)  # (B, K, D)
        behavior = x.unsqueeze(1).expand(-1, self.top_k, -1)  # (B, K, D_in)
        inputs = torch.cat([memory.gather(1, at), behavior], dim=-1)  # (B, K, D + D_in)
        picked = channels.gather(1, at).reshape(b * self.top_k, d)  # (B*K, D)
        updated = self.gru(inputs.reshape(b * self.top_k, -1), picked).reshape(b, self.top_k, d)  # (B, K, D)
        return torch.where(real.reshape(b, 1, 1), channels.scatter(1, at, updated), channels)  # (B, m, D)


class MIMN(nn.Module):
    """``forward(batch) -> (B,)`` logits; ``logits_and_auxiliary_loss(batch)`` adds the weighted utilisation loss."""

    def __init__(self, schema: Schema, config: MIMNConfig):
        super().__init__()
        self.inputs = BehaviorInputs(schema, config.groups, [LONG], config.embed_dim)
        d = self.inputs.item_dim  # memory slots and channels are as wide as a behaviour
        self.memory = NTMMemory(d, d, config.memory_slots, config.controller_dim)
        self.induction = MemoryInduction(d, d, config.induction_top_k)
        self.read_memory = MultiHeadTargetAttention(d, d, num_heads=1, head_dim=d)
        self.read_channels = MultiHeadTargetAttention(d, d, num_heads=1, head_dim=d)
        self.mlp = MLP(self.inputs.plain_dim + 2 * d, config.mlp_dims, dropout=config.dropout, output_dim=1)
        self.memory_len = config.memory_len
        self.utilization_weight = config.utilization_weight

    def logits_and_auxiliary_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = [t[:, -self.memory_len :] for t in self.inputs.ids(batch)]  # [(B, T)]: the most recent behaviours
        behaviors, real = self.inputs.embed(ids), ids[0] > 0  # (B, T, A*D), (B, T)
        b = real.shape[0]  # not len(): that is a constant when traced for export
        state = self.memory.initial_state(b)
        channels = behaviors.new_zeros(b, self.memory.slots, self.memory.memory_dim)  # (B, m, D)
        written = behaviors.new_zeros(b, self.memory.slots)  # (B, m): Σ_t write weights
        # a fixed number of steps, unrolled at export; unbind once: indexing [:, t] would allocate a
        # (B, T, A*D) zero gradient per step in backward
        for x, is_real in zip(behaviors.unbind(1), real.unbind(1)):
            state, out = self.memory.step(x, is_real, state)
            channels = self.induction(channels, state.memory, x, out.read_weights, is_real)
            written = written + out.write_weights
        target = self.inputs.target(batch)  # (B, A*D)
        every_slot = torch.ones_like(written, dtype=torch.bool)  # (B, m)
        x = torch.cat(
            [
                self.inputs.plain(batch),
                self.read_memory(target, state.memory, every_slot),
                self.read_channels(target, channels, every_slot),
            ],
            dim=1,
        )  # (B, P + 2*A*D)
        share = written / state.steps.clamp(min=1)  # (B, m): each slot's mean write weight (0 for an empty row)
        utilization = (share - share.mean(dim=1, keepdim=True)).pow(2).sum(dim=1).mean()
        return self.mlp(x).squeeze(-1), self.utilization_weight * utilization  # (B,), ()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.logits_and_auxiliary_loss(batch)[0]
