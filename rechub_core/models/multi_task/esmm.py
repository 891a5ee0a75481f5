"""ESMM: Entire Space Multi-task Model.

Ma, Zhao, Huang, Wang, Hu, Zhu and Gai, "Entire Space Multi-Task Model: An
Effective Approach for Estimating Post-Click Conversion Rate", SIGIR 2018.

As in the paper (Sec. 2.3): one embedding lookup shared by a CTR tower and a
CVR tower (the towers share nothing else); pCTCVR = pCTR × pCVR; the loss is
the CTR loss plus the CTCVR loss, both over every impression. So ``forward``
returns, per task, the logit of its entire-space probability: column 0 the
CTR logit, column 1 ``logit(pCTR · pCVR)``. The trainer's BCE-with-logits on
(click, conversion) over all rows is then exactly the paper's loss, and the
CVR tower is only ever trained through the product, on the entire space
(``conditional_logits`` gives pCVR itself, for scoring).

Generalised to T funnel stages as a chain: tower t gives
``q_t = P(stage t | stage t-1)`` and column t is the logit of
``prod_{s<=t} q_s``. The product's logit is computed in log space, exactly:
with ``a`` the chain's logit so far and ``b`` the next tower's,
``1/(σ(a)σ(b)) - 1 = e^-a + e^-b + e^-(a+b)``, so
``logit(σ(a)σ(b)) = -logsumexp(-a, -b, -a-b)`` — the same value as
``log p - log(1 - p)`` with ``log p = logsigmoid(a) + logsigmoid(b)``, without
the cancellation of ``1 - p`` near 1 and with only ops ONNX exports.
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
class ESMMConfig:
    name: Literal["esmm"] = "esmm"
    embed_dim: int = 16
    tower_dims: list[int] = field(default_factory=lambda: [200, 80])  # each task's tower, ReLU
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(tower_dims=self.tower_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim)
        require_dropout(self.dropout)


def product_logit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``logit(σ(a) · σ(b))``, exact and finite for any finite logits."""
    terms = torch.stack([-a, -b, -a - b], dim=-1)  # (..., 3)
    return -torch.logsumexp(terms, dim=-1)


def chain_logits(conditional: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` stage logits given ``q_t`` → ``(B, T)`` logits of ``prod_{s<=t} q_s``."""
    columns = [conditional[:, 0]]
    for t in range(1, conditional.shape[1]):
        columns.append(product_logit(columns[-1], conditional[:, t]))  # (B,)
    return torch.stack(columns, dim=1)  # (B, T)


class ESMM(nn.Module):
    """``forward(batch) -> (B, T)``: column t the logit of ``prod_{s<=t} q_s`` (pCTR, pCTCVR, ...).

    ``conditional_logits(batch) -> (B, T)``: each tower's own logit (pCTR, pCVR, ...).
    """

    funnel = True

    def __init__(self, schema: Schema, config: ESMMConfig, num_tasks: int):
        super().__init__()
        if num_tasks < 2:
            raise ValueError(f"ESMM chains funnel stages: num_tasks must be at least 2, got {num_tasks}")
        self.input = FlatInput(schema.features(*config.groups), config.embed_dim)
        self.towers = nn.ModuleList(
            MLP(self.input.output_dim, config.tower_dims, dropout=config.dropout, output_dim=1)
            for _ in range(num_tasks)
        )

    def conditional_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.input(batch)  # (B, d_in): the shared embedding lookup
        return torch.cat([tower(x) for tower in self.towers], dim=1)  # (B, T)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return chain_logits(self.conditional_logits(batch))  # (B, T)
