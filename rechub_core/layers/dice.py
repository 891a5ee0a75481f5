"""Dice, the data-adaptive activation of DIN.

Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD
2018, Sec. 5.2, Eq. 13-14. PReLU, ``f(s) = s`` for ``s > 0`` and ``α s``
otherwise, switches hard at 0; Dice switches smoothly at the mean of its input:

    f(s) = p(s) s + (1 - p(s)) α s,    p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + ε))

per channel, with a learned ``α`` per channel (starting at 0.25, PReLU's usual
start; the paper gives none) and ``ε = 1e-8`` (the paper's value). In training, ``E[s]`` and ``Var[s]`` are the mini-batch's mean and
(biased) variance; in eval, moving averages of them (``running_mean`` and
``running_var``, ``r ← (1 - momentum) r + momentum · batch``, as batch
normalisation keeps), so inference is element-wise and exports to ONNX.
With ``E[s] = 0`` and ``Var[s] → 0`` Dice becomes PReLU.

``mask`` restricts the statistics to real entries (DIN's activation unit runs
on every behaviour position; padding positions must not shift the
statistics). Entries outside the mask are still transformed, with the real
entries' statistics.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class Dice(nn.Module):
    """``(..., C)`` → ``(..., C)``; the statistics run over every leading position (``mask``: the real ones).

    >>> dice = Dice(3)
    >>> dice(torch.randn(4, 3)).shape, dice(torch.randn(2, 5, 3), torch.ones(2, 5, dtype=torch.bool)).shape
    (torch.Size([4, 3]), torch.Size([2, 5, 3]))
    """

    def __init__(self, channels: int, *, eps: float = 1e-8, momentum: float = 0.1, alpha: float = 0.25):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((channels,), alpha))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.eps, self.momentum = eps, momentum

    def forward(self, s: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            mean, var = self._batch_statistics(s, mask)
        else:
            mean, var = self.running_mean, self.running_var
        p = torch.sigmoid((s - mean) / torch.sqrt(var + self.eps))  # (..., C)
        return p * s + (1 - p) * self.alpha * s

    def _batch_statistics(self, s: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        flat = s.reshape(-1, s.shape[-1])  # (N, C)
        if mask is None:
            weight = torch.ones(len(flat), 1, dtype=s.dtype)  # (N, 1)
        else:
            weight = mask.reshape(-1, 1).to(s.dtype)  # (N, 1): 1 at real entries
        count = weight.sum()
        if count == 0:  # nothing real in the batch: leave the running statistics alone
            return self.running_mean, self.running_var
        mean = (flat * weight).sum(0) / count  # (C,)
        var = ((flat - mean) ** 2 * weight).sum(0) / count  # (C,)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
        return mean, var


def activation(kind: Literal["dice", "prelu"], channels: int) -> nn.Module:
    """DIN's activations: ``Dice(channels)`` or a per-channel ``nn.PReLU``."""
    if kind == "dice":
        return Dice(channels)
    if kind == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"activation must be 'dice' or 'prelu', got {kind!r}")


def activate(module: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a DIN activation to ``(..., C)``: Dice with ``mask`` for its statistics, PReLU per channel."""
    if isinstance(module, Dice):
        return module(x, mask)
    return module(x.reshape(-1, x.shape[-1])).reshape(x.shape)  # PReLU's channels are dim 1: flatten to (N, C)
