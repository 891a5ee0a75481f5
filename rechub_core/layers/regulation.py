"""EDCN's regulation module: field-wise gates that give each parallel network its own view of the input.

Chen et al., "Enhancing Explicit and Implicit Feature Interactions via
Information Sharing for Parallel Deep CTR Models", DLP-KDD 2021
(Eq. 7-8). A learnable gate value ``g_i`` per field, turned into field weights
by a softmax with temperature ``τ`` over the ``F`` fields,
``g'_i = exp(g_i / τ) / Σ_j exp(g_j / τ)``, and each field's embedding scaled
by its weight, ``ê_i = g'_i e_i``. The cross and the deep network each have
their own gates, so one input becomes two differently weighted inputs. The
gates start equal (all 1, as in the authors' code): every field weighs
``1 / F`` at first. A smaller ``τ`` makes the weights sharper.
"""

from __future__ import annotations

import torch
from torch import nn


class RegulationModule(nn.Module):
    """A field-stacked ``(B, F·D)`` input -> ``(cross_input, deep_input)``, each ``(B, F·D)``.

    >>> cross, deep = RegulationModule(3, 4, temperature=1.0)(torch.randn(2, 12))
    >>> cross.shape, deep.shape
    (torch.Size([2, 12]), torch.Size([2, 12]))
    """

    def __init__(self, num_fields: int, dim: int, temperature: float):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.num_fields = num_fields
        self.dim = dim
        self.temperature = temperature
        self.gates = nn.Parameter(torch.ones(2, num_fields))  # g_i for the cross (row 0) and deep (row 1) inputs

    def field_weights(self) -> torch.Tensor:
        """``(2, F)``: each row a softmax over the fields (cross, then deep)."""
        return torch.softmax(self.gates / self.temperature, dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.field_weights().unsqueeze(-1).expand(2, self.num_fields, self.dim)  # (2, F, D)
        weights = weights.reshape(2, self.num_fields * self.dim)  # each field's weight over its D dims: (2, F·D)
        return x * weights[0], x * weights[1]  # (B, F·D) each
