"""Cross networks: explicit, bounded-degree feature crosses of one flat input ``x0``.

Every layer keeps the input width ``d`` and adds a residual, so ``l`` layers
hold every cross of ``x0``'s entries up to degree ``l + 1``.

- ``CrossNet``: DCN, Wang et al., "Deep & Cross Network for Ad Click
  Predictions", ADKDD 2017: ``x_{l+1} = x0 (x_l^T w_l) + b_l + x_l``.
- ``CrossNetV2``: DCN-V2, Wang et al., "DCN V2: Improved Deep & Cross Network
  and Practical Lessons for Web-scale Learning to Rank Systems", WWW 2021:
  ``x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l`` with a full ``d × d`` matrix.
- ``LowRankMixtureCross``: DCN-V2's cost-effective mixture of low-rank
  experts, ``x_{l+1} = Σ_i G_i(x_l) E_i(x_l) + x_l``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class CrossNet(nn.Module):
    """DCN (v1) vector cross layers, ``(B, d) -> (B, d)``.

    >>> CrossNet(4, num_layers=2)(torch.randn(3, 4)).shape
    torch.Size([3, 4])
    """

    def __init__(self, input_dim: int, num_layers: int):
        super().__init__()
        bound = input_dim**-0.5
        self.weight = nn.Parameter(torch.empty(num_layers, input_dim).uniform_(-bound, bound))  # w_l: (L, d)
        self.bias = nn.Parameter(torch.zeros(num_layers, input_dim))  # b_l: (L, d)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, b in zip(self.weight, self.bias):
            scale = x @ w.unsqueeze(-1)  # x_l^T w_l: (B, 1)
            x = x0 * scale + b + x  # (B, d)
        return x


class CrossNetV2(nn.Module):
    """DCN-V2 full-matrix cross layers, ``(B, d) -> (B, d)``.

    >>> CrossNetV2(4, num_layers=2)(torch.randn(3, 4)).shape
    torch.Size([3, 4])
    """

    def __init__(self, input_dim: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(input_dim, input_dim) for _ in range(num_layers))  # W_l, b_l
        for layer in self.layers:
            nn.init.zeros_(layer.bias)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x  # (B, d)
        return x


class LowRankMixtureCross(nn.Module):
    """DCN-V2 mixture of low-rank cross layers, ``(B, d) -> (B, d)``.

    Layer ``l`` has ``K = num_experts`` experts of rank ``r = rank``, each
    ``E_i(x_l) = x0 ⊙ (U_i g(C_i g(V_i^T x_l)) + b_l)`` with ``V_i, U_i^T`` of
    shape ``d × r`` and ``C_i`` of ``r × r``; the bias ``b_l`` is shared by the
    experts of a layer, as in the paper. The gates are a softmax over experts
    of a linear map of ``x_l``, ``G(x_l) = softmax(W_g x_l)``, and
    ``x_{l+1} = Σ_i G_i(x_l) E_i(x_l) + x_l``.

    ``activation`` is the paper's ``g``:

    - ``"identity"``: ``g`` is the identity and ``C_i`` is left out (it would
      fold into ``U_i``), ``E_i(x_l) = x0 ⊙ (U_i V_i^T x_l + b_l)``; with one
      expert this is exactly the plain low-rank cross
      ``x0 ⊙ (U V^T x_l + b_l) + x_l``.
    - ``"tanh"``: the nonlinear transformation in the projected space, with ``C_i``.

    With one expert there is no gate (its softmax would be constantly 1).

    >>> LowRankMixtureCross(8, num_layers=2, rank=2, num_experts=3)(torch.randn(5, 8)).shape
    torch.Size([5, 8])
    """

    def __init__(
        self,
        input_dim: int,
        num_layers: int,
        rank: int,
        num_experts: int = 1,
        *,
        activation: Literal["identity", "tanh"] = "identity",
    ):
        super().__init__()
        if activation not in ("identity", "tanh"):
            raise ValueError(f"activation must be 'identity' or 'tanh', got {activation!r}")
        self.activation = activation
        shape = (num_layers, num_experts)
        self.down = nn.Parameter(_xavier(*shape, input_dim, rank))  # V_i: (L, K, d, r)
        self.up = nn.Parameter(_xavier(*shape, rank, input_dim))  # U_i^T: (L, K, r, d)
        self.mid = nn.Parameter(_xavier(*shape, rank, rank)) if activation == "tanh" else None  # C_i^T: (L, K, r, r)
        self.bias = nn.Parameter(torch.zeros(num_layers, input_dim))  # b_l: (L, d)
        # W_g^T: (L, d, K)
        self.gate = nn.Parameter(_xavier(num_layers, input_dim, num_experts)) if num_experts > 1 else None

    def _g(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z) if self.activation == "tanh" else z

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in range(self.bias.shape[0]):
            z = self._g(torch.einsum("bd,kdr->bkr", x, self.down[layer]))  # g(V_i^T x_l): (B, K, r)
            if self.mid is not None:
                z = self._g(torch.einsum("bkr,krs->bks", z, self.mid[layer]))  # g(C_i z): (B, K, r)
            projected = torch.einsum("bkr,krd->bkd", z, self.up[layer])  # U_i z: (B, K, d)
            experts = x0.unsqueeze(1) * (projected + self.bias[layer])  # E_i(x_l): (B, K, d)
            if self.gate is None:
                mixed = experts.squeeze(1)  # (B, d)
            else:
                gates = torch.softmax(x @ self.gate[layer], dim=-1)  # G_i(x_l): (B, K)
                mixed = (gates.unsqueeze(-1) * experts).sum(dim=1)  # (B, d)
            x = mixed + x  # (B, d)
        return x


def _xavier(*shape: int) -> torch.Tensor:
    """Glorot-uniform over the last two dimensions (fan in, fan out), any leading batch of matrices."""
    bound = (6.0 / (shape[-2] + shape[-1])) ** 0.5
    return torch.empty(shape).uniform_(-bound, bound)
