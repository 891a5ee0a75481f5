"""Attention-based pooling of pair-wise interactions (AFM).

Xiao et al., "Attentional Factorization Machines: Learning the Weight of
Feature Interactions via Attention Networks", IJCAI 2017, Sec. 3.1-3.2. Every
pair of fields ``i < j`` gives the interacted vector ``v_i ⊙ v_j``; an attention
network scores each one, ``a'_ij = h^T ReLU(W (v_i ⊙ v_j) + b)``, the scores are
normalised by a softmax over the pairs, and the pooled vector is
``Σ_{i<j} a_ij (v_i ⊙ v_j)``. ``field_pairs`` lists the pairs (for any
pair-wise layer).
"""

from __future__ import annotations

import torch
from torch import nn


def field_pairs(num_fields: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair of fields ``i < j`` in row-major order, as index lists ``(rows, cols)``, each ``(P,)``.

    >>> field_pairs(3)
    (tensor([0, 0, 1]), tensor([1, 2, 2]))
    """
    if num_fields < 2:
        raise ValueError(f"pair-wise interactions need at least 2 fields, got {num_fields}")
    rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)  # (P,), (P,)
    return rows, cols


class AttentionalPairPooling(nn.Module):
    """``(B, F, D) -> (B, D)``: attention-weighted sum of the ``F(F-1)/2`` interacted vectors.

    ``W`` (``attention_dim × D``) and ``b`` are ``attention[0]``, ``h`` is
    ``attention[2]`` (no bias: a constant would cancel in the softmax).

    >>> AttentionalPairPooling(num_fields=3, embed_dim=4, attention_dim=2)(torch.randn(5, 3, 4)).shape
    torch.Size([5, 4])
    """

    def __init__(self, num_fields: int, embed_dim: int, attention_dim: int):
        super().__init__()
        rows, cols = field_pairs(num_fields)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.attention = nn.Sequential(
            nn.Linear(embed_dim, attention_dim), nn.ReLU(), nn.Linear(attention_dim, 1, bias=False)
        )
        nn.init.xavier_uniform_(self.attention[0].weight)
        nn.init.zeros_(self.attention[0].bias)

    def interactions(self, fields: torch.Tensor) -> torch.Tensor:
        """The pair-wise interaction layer, ``(B, F, D) -> (B, P, D)``, pairs in ``(rows, cols)`` order."""
        return fields.index_select(1, self.rows) * fields.index_select(1, self.cols)  # (B, P, D)

    def weights(self, pairs: torch.Tensor) -> torch.Tensor:
        """Attention ``a_ij`` of interacted vectors ``(B, P, D)``: ``(B, P)``, each row summing to 1."""
        return torch.softmax(self.attention(pairs).squeeze(-1), dim=1)  # (B, P)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        pairs = self.interactions(fields)  # (B, P, D)
        return (self.weights(pairs).unsqueeze(-1) * pairs).sum(dim=1)  # (B, D)
