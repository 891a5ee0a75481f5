"""Transformer block over padded id sequences, in SASRec's arrangement.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, Sec.
III-B/C: each sub-layer ``g`` (self-attention, then a point-wise two-layer FFN
with ReLU) is wrapped as ``x + Dropout(g(LayerNorm(x)))``. Queries, keys and
values are projections of the same normalised input.

Masking: keys at padding positions never take part; with ``causal`` a position
attends only to itself and earlier ones. A position may always attend to itself,
so a padding query (which has no valid key, e.g. the leading positions of a
left-padded row under a causal mask) still has a well-defined softmax; its
output is then zeroed, as are all outputs at padding positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention_mask(mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """``(B, L)`` valid positions → ``(B, 1, L, L)`` bool, True where query i may attend to key j."""
    length = mask.shape[1]
    pos = torch.arange(length, device=mask.device)
    allowed = mask.unsqueeze(1)  # (B, 1, L): valid keys, for every query
    if causal:
        allowed = allowed & (pos.unsqueeze(0) <= pos.unsqueeze(1))  # (B, L, L): key j <= query i
    allowed = allowed | (pos.unsqueeze(0) == pos.unsqueeze(1))  # (B, L, L): always itself
    return allowed.unsqueeze(1)  # (B, 1, L, L), broadcast over heads


class TransformerBlock(nn.Module):
    """``(B, L, D)`` with a ``(B, L)`` valid mask → ``(B, L, D)``, zero at padding positions.

    >>> block = TransformerBlock(8, num_heads=2, dropout=0.0)
    >>> x, mask = torch.randn(3, 5, 8), torch.tensor([[0, 0, 1, 1, 1]] * 3).bool()
    >>> block(x, mask, causal=True).shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, dim: int, num_heads: int, dropout: float, ffn_dim: int | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)  # W^Q, W^K, W^V side by side
        # W^O mixes the heads; with one head it only re-parametrises W^V
        self.out = nn.Linear(dim, dim, bias=False)
        self.ffn_norm = nn.LayerNorm(dim)
        hidden = ffn_dim or dim  # the paper uses d x d for both FFN layers
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.dropout = nn.Dropout(dropout)

    def _attend(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # 3 x (B, L, D)
        heads = [t.reshape(b, length, self.num_heads, -1).transpose(1, 2) for t in (q, k, v)]  # 3 x (B, H, L, D/H)
        y = F.scaled_dot_product_attention(*heads, attn_mask=allowed)  # (B, H, L, D/H)
        y = y.transpose(1, 2).reshape(b, length, dim)  # (B, L, D)
        return self.out(y)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, causal: bool) -> torch.Tensor:
        allowed = attention_mask(mask, causal)  # (B, 1, L, L)
        x = x + self.dropout(self._attend(self.attn_norm(x), allowed))  # (B, L, D)
        x = x + self.dropout(self.ffn(self.ffn_norm(x)))  # (B, L, D)
        return x * mask.unsqueeze(-1).to(x.dtype)  # (B, L, D), zero at padding
