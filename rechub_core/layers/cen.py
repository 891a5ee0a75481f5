"""Compose-Excitation network (CENet): attention weights for the vectors of an embedding matrix.

Zhang, Huang & Zhang, "FAT-DeepFFM: Field Attentive Deep Field-aware Factorization Machine",
arXiv 1905.06336, 2019: SENet (Hu et al., CVPR 2018) with its average-pooling squeeze replaced by
a learned compose step, applied in FAT-DeepFFM to the ``F × F`` field-aware vectors before they
interact, so every ``v_{i,j}`` gets its own weight. Over ``N`` vectors ``e_n`` of width ``D``:

1. compose (a 1-D convolution whose kernel ``u_n`` spans one vector, one kernel per vector):
   ``d_n = ReLU(<u_n, e_n>)``, the descriptor ``d ∈ R^N``;
2. excitation (two fully connected layers, ``N → ⌈N / r⌉ → N``, ReLU after both):
   ``a = ReLU(W_2 ReLU(W_1 d + b_1) + b_2)``;
3. re-weight: ``e'_n = a_n · e_n``.

The paper writes the excitation without biases; here both layers have them and ``b_2`` starts
at 1, so every weight starts near 1: the network starts as the unweighted model, and no output
ReLU starts dead (a weight at 0 gets no gradient and would silence its vector for good).
"""

from __future__ import annotations

import torch
from torch import nn


class CENet(nn.Module):
    """``(B, N, D) -> (B, N, D)``: each of the ``N`` vectors scaled by its attention weight.

    >>> CENet(num_vectors=6, dim=4, reduction_ratio=2)(torch.randn(3, 6, 4)).shape
    torch.Size([3, 6, 4])
    """

    def __init__(self, num_vectors: int, dim: int, reduction_ratio: int = 1):
        super().__init__()
        if num_vectors < 1 or dim < 1 or reduction_ratio < 1:
            raise ValueError(f"CENet needs positive sizes, got N={num_vectors}, D={dim}, r={reduction_ratio}")
        bound = dim**-0.5
        self.kernels = nn.Parameter(torch.empty(num_vectors, dim).uniform_(-bound, bound))  # u_n: (N, D)
        hidden = -(-num_vectors // reduction_ratio)  # ⌈N / r⌉
        self.squeeze = nn.Linear(num_vectors, hidden)  # W_1, b_1
        self.excite = nn.Linear(hidden, num_vectors)  # W_2, b_2
        nn.init.ones_(self.excite.bias)

    def weights(self, vectors: torch.Tensor) -> torch.Tensor:
        """The attention weights ``a``, ``(B, N, D) -> (B, N)``."""
        descriptor = torch.relu((vectors * self.kernels).sum(dim=-1))  # d: (B, N)
        return torch.relu(self.excite(torch.relu(self.squeeze(descriptor))))  # a: (B, N)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors * self.weights(vectors).unsqueeze(-1)  # (B, N, D)
