"""Self-attentive multi-interest extraction (ComiRec-SA).

Cen et al., "Controllable Multi-Interest Framework for Recommendation", KDD
2020, Sec. 3.3 (after Lin et al., ICLR 2017): with the behaviour embeddings
plus trainable positional embeddings as rows of H ``(L, D)``,
A = softmax(W2 tanh(W1 H^T)) ``(K, L)`` (a softmax over positions per
interest) and V = A H ``(K, D)``. Padding positions get zero attention; an
all-padding row gives V = 0.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfAttentiveInterests(nn.Module):
    """Behaviours ``(B, L, D)`` with a ``(B, L)`` valid mask → interests ``(B, K, D)``.

    Positions count from the right end of the ``max_len`` window (most recent
    last), so a shorter left-padded input means the same as a full-length one.

    >>> layer = SelfAttentiveInterests(8, num_interests=3, attention_dim=16, max_len=5)
    >>> x, mask = torch.randn(2, 5, 8), torch.tensor([[0, 0, 1, 1, 1], [1] * 5]).bool()
    >>> layer(x, mask).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, dim: int, *, num_interests: int, attention_dim: int, max_len: int):
        super().__init__()
        if num_interests < 1 or attention_dim < 1:
            raise ValueError(f"num_interests ({num_interests}) and attention_dim ({attention_dim}) must be positive")
        self.max_len = max_len
        self.positions = nn.Embedding(max_len, dim)
        nn.init.normal_(self.positions.weight, std=0.01)
        self.w1 = nn.Linear(dim, attention_dim, bias=False)  # W1 (d_a x d)
        self.w2 = nn.Linear(attention_dim, num_interests, bias=False)  # W2 (K x d_a)

    def attention(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A ``(B, K, L)``: each interest's softmax over the valid positions of H ``(B, L, D)``."""
        logits = self.w2(torch.tanh(self.w1(h))).transpose(1, 2)  # (B, K, L)
        logits = logits.masked_fill(~mask.unsqueeze(1), torch.finfo(h.dtype).min)  # (B, K, L)
        return torch.softmax(logits, dim=-1) * mask.unsqueeze(1).to(h.dtype)  # (B, K, L), 0 if all padding

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
        pos = torch.arange(self.max_len - length, self.max_len, device=x.device)  # (L,)
        h = (x + self.positions(pos)) * mask.unsqueeze(-1).to(x.dtype)  # (B, L, D)
        return self.attention(h, mask) @ h  # (B, K, D)
