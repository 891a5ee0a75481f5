"""AutoInt's interacting layer: multi-head self-attention over feature fields.

Song et al., "AutoInt: Automatic Feature Interaction Learning via
Self-Attentive Neural Networks", CIKM 2019, Sec. 4.3, Eq. 5-8. For field
``m`` and head ``h``, with ``W_query, W_key, W_value`` of size ``d' × d``:

- ``α_{m,k} = softmax_k(<W_query e_m, W_key e_k>)`` over all fields ``k``
  (Eq. 5: a plain inner product, not scaled by ``√d'``);
- ``ẽ_m^(h) = Σ_k α_{m,k} W_value e_k`` (Eq. 6);
- ``ẽ_m = ẽ_m^(1) ⊕ … ⊕ ẽ_m^(H)``, width ``H·d'`` (Eq. 7);
- ``e_m^Res = ReLU(ẽ_m + W_Res e_m)`` (Eq. 8), ``W_Res`` of size ``H·d' × d``;
  without the residual, ``ReLU(ẽ_m)`` (the paper's "w/o residual" ablation).

Unlike a Transformer block there is no LayerNorm, no feed-forward sub-layer
and no mask: every field is always present. The authors' released code also
passes Q, K, V through a ReLU, scales by ``√d'`` and adds a LayerNorm; the
paper's equations have none of these, and neither does this layer.
"""

from __future__ import annotations

import torch
from torch import nn


class InteractingLayer(nn.Module):
    """``(B, M, d) -> (B, M, H·d')``: every field re-expressed through the fields it attends to.

    >>> InteractingLayer(4, attention_dim=3, num_heads=2)(torch.randn(5, 6, 4)).shape
    torch.Size([5, 6, 6])
    """

    def __init__(self, input_dim: int, attention_dim: int, num_heads: int, *, use_residual: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.attention_dim = attention_dim
        self.output_dim = num_heads * attention_dim
        # every head's W_query (resp. W_key, W_value) stacked: (H·d', d)
        self.query = nn.Linear(input_dim, self.output_dim, bias=False)
        self.key = nn.Linear(input_dim, self.output_dim, bias=False)
        self.value = nn.Linear(input_dim, self.output_dim, bias=False)
        self.residual = nn.Linear(input_dim, self.output_dim, bias=False) if use_residual else None  # W_Res
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, m, _ = x.shape
        return x.reshape(b, m, self.num_heads, self.attention_dim).transpose(1, 2)  # (B, H, M, d')

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(proj(fields)) for proj in (self.query, self.key, self.value))  # (B, H, M, d')
        attention = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # α_{m,k}, over fields k: (B, H, M, M)
        heads = attention @ v  # ẽ_m^(h): (B, H, M, d')
        out = heads.transpose(1, 2).flatten(start_dim=2)  # heads concatenated, ẽ_m: (B, M, H·d')
        if self.residual is not None:
            out = out + self.residual(fields)  # + W_Res e_m: (B, M, H·d')
        return torch.relu(out)
