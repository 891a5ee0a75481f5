"""Multi-layer perceptron: Linear → activation → dropout, repeated."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """``MLP(16, [64, 32])`` maps ``(B, 16)`` to ``(B, 32)``.

    ``output_dim`` adds a final plain Linear (no activation), e.g. 1 for a logit.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        *,
        dropout: float = 0.0,
        output_dim: int | None = None,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        dim = input_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(dim, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = hidden
        if output_dim is not None:
            layers.append(nn.Linear(dim, output_dim))
            dim = output_dim
        self.net = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
