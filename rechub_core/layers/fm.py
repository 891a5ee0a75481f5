"""Second-order factorization machine term (Rendle, ICDM 2010)."""

from __future__ import annotations

import torch
from torch import nn


class FactorizationMachine(nn.Module):
    """Sum of pairwise inner products of field embeddings, ``(B, F, D) -> (B,)``.

    Uses the O(F·D) identity ``0.5 * ((Σ v)^2 - Σ v^2)``.
    """

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        square_of_sum = fields.sum(dim=1).pow(2)  # (B, D)
        sum_of_square = fields.pow(2).sum(dim=1)  # (B, D)
        return 0.5 * (square_of_sum - sum_of_square).sum(dim=1)  # (B,)
