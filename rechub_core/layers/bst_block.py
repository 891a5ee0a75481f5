"""The Transformer layer of BST: post-norm, with a LeakyReLU feed-forward network.

Chen et al., "Behavior Sequence Transformer for E-commerce Recommendation in
Alibaba", DLP-KDD 2019, Sec. 2.3: multi-head self-attention over the whole
sequence, then a point-wise two-layer FFN, each wrapped as
``LayerNorm(x + Dropout(g(x)))`` (the normalisation after the residual, as in
Vaswani et al.), with ``g = LeakyReLU(x W1 + b1) W2 + b2`` for the FFN.

SASRec's ``TransformerBlock`` (``rechub_core.layers.attention``) normalises
before each sub-layer (``x + Dropout(g(LayerNorm(x)))``) and uses ReLU, so BST's
block reuses its projections and masked attention and changes only where the
normalisations sit and the activation. Attention is bidirectional; keys at
padding positions never take part, and padding positions' outputs are zero.
"""

from __future__ import annotations

import torch
from torch import nn

from rechub_core.layers.attention import TransformerBlock, attention_mask


def leaky(module: nn.Module) -> nn.Module:
    """``module`` with every ReLU inside it replaced by a LeakyReLU (slope 0.01); returns it."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.LeakyReLU())
        else:
            leaky(child)
    return module


class BSTBlock(TransformerBlock):
    """``(B, L, D)`` with a ``(B, L)`` valid mask → ``(B, L, D)``, zero at padding positions.

    >>> block = BSTBlock(6, num_heads=2, dropout=0.0)
    >>> block(torch.randn(2, 4, 6), torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]).bool()).shape
    torch.Size([2, 4, 6])
    """

    def __init__(self, dim: int, num_heads: int, dropout: float, ffn_dim: int | None = None):
        super().__init__(dim, num_heads, dropout, ffn_dim)
        leaky(self.ffn)
        # here attn_norm and ffn_norm normalise the residual sums, after each sub-layer

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        allowed = attention_mask(mask, causal=False)  # (B, 1, L, L)
        x = self.attn_norm(x + self.dropout(self._attend(x, allowed)))  # (B, L, D)
        x = self.ffn_norm(x + self.dropout(self.ffn(x)))  # (B, L, D)
        return x * mask.unsqueeze(-1).to(x.dtype)  # (B, L, D), zero at padding
