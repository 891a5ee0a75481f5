"""Regression outputs on their targets' scale: a model's task columns times a fixed scale, plus a fixed shift.

A regression task's target can sit far from 0 with any spread (ratings 1 to 5, revenue in cents), while a
freshly built model outputs about 0 with unit-sized steps. ``TaskScale`` wraps a multi-task model so
that it predicts ``shift + scale * inner`` per task: with the training targets' mean and standard
deviation, the inner model learns standardised targets from its first step (the same start and the same
gradient size for every target's units), and the wrapped model, as saved, evaluated and exported to
ONNX, predicts in the target's own units. Binary tasks get shift 0 and scale 1: their logits pass as
they are. ``fit_pointwise`` divides each task's squared error by its scale squared, so the loss is
the inner model's error on the standardised target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class TaskScale(nn.Module):
    def __init__(self, inner: nn.Module, shift: Sequence[float], scale: Sequence[float]):
        super().__init__()
        if len(shift) != len(scale) or any(s <= 0 for s in scale):
            raise ValueError(f"one shift and one positive scale per task, got {list(shift)} and {list(scale)}")
        self.inner = inner
        self.register_buffer("shift", torch.tensor(list(shift), dtype=torch.float32))  # (T,)
        self.register_buffer("scale", torch.tensor(list(scale), dtype=torch.float32))  # (T,)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inner(batch).reshape(-1, len(self.shift)) * self.scale + self.shift  # (B, T)
