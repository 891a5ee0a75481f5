"""Squeeze-and-excitation over fields (FiBiNET's SENET layer).

Huang, Zhang & Zhang, "FiBiNET: Combining Feature Importance and Bilinear
feature Interaction for Click-Through Rate Prediction", RecSys 2019, Sec. 3.3:

- squeeze: ``z_i = mean_t e_i^(t)``, one statistic per field (mean pooling);
- excitation: ``A = ReLU(W_2 ReLU(W_1 z))`` with ``W_1`` of ``F/r × F`` and
  ``W_2`` of ``F × F/r`` (``r`` the reduction ratio), no biases, as in the paper;
- re-weight: ``v_i = a_i e_i``.
"""

from __future__ import annotations

import torch
from torch import nn


class SENET(nn.Module):
    """``(B, F, D) -> (B, F, D)``, each field scaled by its learned importance.

    The bottleneck has ``max(1, F // reduction_ratio)`` units.

    >>> SENET(num_fields=6, reduction_ratio=3)(torch.randn(5, 6, 4)).shape
    torch.Size([5, 6, 4])
    """

    def __init__(self, num_fields: int, reduction_ratio: int):
        super().__init__()
        if num_fields < 1 or reduction_ratio < 1:
            raise ValueError(f"num_fields ({num_fields}) and reduction_ratio ({reduction_ratio}) must be at least 1")
        hidden = max(1, num_fields // reduction_ratio)
        self.excitation = nn.Sequential(
            nn.Linear(num_fields, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, num_fields, bias=False), nn.ReLU()
        )

    def importance(self, fields: torch.Tensor) -> torch.Tensor:
        """The field weights ``A``, ``(B, F, D) -> (B, F)``."""
        return self.excitation(fields.mean(dim=-1))  # squeeze (B, F) -> excite (B, F)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        return fields * self.importance(fields).unsqueeze(-1)  # (B, F, D)
