"""Multi-head scaled dot-product attention with the target item as the only query.

The exact search unit of SIM (Pi et al., CIKM 2020, Sec. 4.2) and ETA's
target attention (Chen et al., 2021, Sec. 3.3) attend from the candidate item
over a user's (retrieved) behaviours: per head ``h``,
``a_h = softmax_j(<W_q^h t, W_k^h e_j> / sqrt(d_h))`` over the real
behaviours ``j``, ``o_h = Σ_j a_hj W_v^h e_j``, and the heads are concatenated
and mixed by ``W_o``. A row without any real behaviour gets a zero vector.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MultiHeadTargetAttention(nn.Module):
    """``(B, Dq)`` target, ``(B, L, Dk)`` behaviours, ``(B, L)`` mask → ``(B, out_dim)``.

    >>> att = MultiHeadTargetAttention(4, 6, num_heads=2, head_dim=3)
    >>> att(torch.randn(2, 4), torch.randn(2, 5, 6), torch.tensor([[1, 1, 0, 0, 0], [0] * 5]).bool()).shape
    torch.Size([2, 6])
    """

    def __init__(self, query_dim: int, key_dim: int, *, num_heads: int, head_dim: int, out_dim: int | None = None):
        super().__init__()
        if num_heads < 1 or head_dim < 1:
            raise ValueError(f"num_heads and head_dim must be at least 1, got {num_heads} and {head_dim}")
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.query = nn.Linear(query_dim, inner, bias=False)
        self.key = nn.Linear(key_dim, inner, bias=False)
        self.value = nn.Linear(key_dim, inner, bias=False)
        self.out = nn.Linear(inner, out_dim or inner, bias=False)
        self.output_dim = out_dim or inner

    def weights(self, target: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, H, L)``: a softmax over each row's real behaviours, zero elsewhere."""
        b, length, _ = behaviors.shape
        q = self.query(target).reshape(b, self.num_heads, 1, self.head_dim)  # (B, H, 1, dh)
        k = self.key(behaviors).reshape(b, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, L, dh)
        scores = (q * k).sum(dim=-1) / math.sqrt(self.head_dim)  # (B, H, L)
        valid = mask.unsqueeze(1)  # (B, 1, L)
        # a large finite negative, not -inf: a row with no real behaviour gets uniform weights, then zeros
        weights = torch.softmax(scores.masked_fill(~valid, -1e9), dim=-1)  # (B, H, L)
        return weights * valid.to(weights.dtype)

    def forward(self, target: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, _ = behaviors.shape
        v = self.value(behaviors).reshape(b, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, L, dh)
        heads = (self.weights(target, behaviors, mask).unsqueeze(-1) * v).sum(dim=2)  # (B, H, dh)
        return self.out(heads.reshape(b, -1))  # (B, out)
