"""EDCN's bridge module: fuses a cross layer's and a deep layer's outputs, layer by layer.

Chen et al., "Enhancing Explicit and Implicit Feature Interactions via
Information Sharing for Parallel Deep CTR Models", DLP-KDD 2021.
Given the ``l``-th cross output ``x_l`` and deep output ``h_l`` (same width
``d``), the bridge output ``f_l`` is one of:

- ``"pointwise_addition"``: ``f_l = x_l + h_l``;
- ``"hadamard_product"``: ``f_l = x_l ⊙ h_l``;
- ``"concatenation"``: ``f_l = ReLU(W_l [x_l ‖ h_l] + b_l)``, ``W_l`` of size ``d × 2d``;
- ``"attention_pooling"``: ``f_l = a_x ⊙ x_l + a_h ⊙ h_l`` with
  ``a_x = softmax(P_x ReLU(W_x x_l + b_x))`` and likewise ``a_h`` from ``h_l``
  with its own ``W_h, b_h, P_h`` (all ``d × d``); each softmax runs over the
  ``d`` positions of its vector, so ``a_x`` and ``a_h`` are element-wise weights.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

BridgeType = Literal["pointwise_addition", "hadamard_product", "concatenation", "attention_pooling"]


def _attention(dim: int) -> nn.Sequential:
    """``x -> softmax(P ReLU(W x + b))`` over the last dimension, ``(B, d) -> (B, d)``."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Softmax(dim=-1))


class BridgeModule(nn.Module):
    """``(x, h)``, both ``(B, d)`` -> ``(B, d)``.

    >>> BridgeModule(4, "attention_pooling")(torch.randn(3, 4), torch.randn(3, 4)).shape
    torch.Size([3, 4])
    """

    def __init__(self, dim: int, kind: BridgeType):
        super().__init__()
        if kind not in get_args(BridgeType):
            raise ValueError(f"bridge must be one of {get_args(BridgeType)}, got {kind!r}")
        self.kind = kind
        self.fuse = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU()) if kind == "concatenation" else None
        self.attend_x = _attention(dim) if kind == "attention_pooling" else None
        self.attend_h = _attention(dim) if kind == "attention_pooling" else None

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "pointwise_addition":
            return x + h
        if self.kind == "hadamard_product":
            return x * h
        if self.fuse is not None:
            return self.fuse(torch.cat([x, h], dim=-1))  # (B, 2d) -> (B, d)
        return self.attend_x(x) * x + self.attend_h(h) * h  # (B, d)
