"""Bilinear feature interaction (FiBiNET).

Huang, Zhang & Zhang, "FiBiNET: Combining Feature Importance and Bilinear
feature Interaction for Click-Through Rate Prediction", RecSys 2019, Sec. 3.4.
Every pair of fields ``i < j`` gives ``p_ij = (v_i W) ⊙ v_j``, a ``D``-vector,
with ``W`` a ``D × D`` matrix that is

- ``"field_all"``: one ``W`` shared by all pairs;
- ``"field_each"``: one ``W_i`` per field ``i``, the left-hand field of the pair;
- ``"field_interaction"``: one ``W_ij`` per pair.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from rechub_core.layers.pair_attention import field_pairs

BilinearType = Literal["field_all", "field_each", "field_interaction"]


class BilinearInteraction(nn.Module):
    """``(B, F, D) -> (B, P, D)`` with ``P = F(F-1)/2`` pairs in ``(rows, cols)`` order.

    ``weight`` is ``(1, D, D)``, ``(F-1, D, D)`` or ``(P, D, D)``. Under
    ``"field_each"`` the paper's ``W_F`` of the last field is left out: the last
    field is never the ``i`` of a pair ``i < j``, so it could not be trained.

    >>> BilinearInteraction(3, 4, "field_interaction")(torch.randn(5, 3, 4)).shape
    torch.Size([5, 3, 4])
    """

    def __init__(self, num_fields: int, embed_dim: int, bilinear_type: BilinearType):
        super().__init__()
        rows, cols = field_pairs(num_fields)  # every pair i < j: (P,), (P,)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        counts = {"field_all": 1, "field_each": num_fields - 1, "field_interaction": len(rows)}
        if bilinear_type not in counts:
            raise ValueError(f"bilinear_type must be one of {sorted(counts)}, got {bilinear_type!r}")
        self.bilinear_type = bilinear_type
        self.weight = nn.Parameter(torch.empty(counts[bilinear_type], embed_dim, embed_dim))  # W: (M, D, D)
        for w in self.weight:
            nn.init.xavier_uniform_(w)  # each D × D matrix on its own

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        left = fields.index_select(1, self.rows)  # v_i: (B, P, D)
        right = fields.index_select(1, self.cols)  # v_j: (B, P, D)
        if self.bilinear_type == "field_all":
            projected = left @ self.weight[0]  # v_i W: (B, P, D)
        elif self.bilinear_type == "field_each":
            each = torch.einsum("bfd,fde->bfe", fields[:, :-1], self.weight)  # v_i W_i for i < F: (B, F-1, D)
            projected = each.index_select(1, self.rows)  # (B, P, D)
        else:
            projected = torch.einsum("bpd,pde->bpe", left, self.weight)  # v_i W_ij: (B, P, D)
        return projected * right  # (B, P, D)
