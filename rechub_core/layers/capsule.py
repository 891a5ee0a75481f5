"""Dynamic routing from a behaviour sequence to K interest capsules.

Sabour et al., "Dynamic Routing Between Capsules", NIPS 2017, as used for
multi-interest extraction by MIND (Li et al., "Multi-Interest Network with
Dynamic Routing for Recommendation at Tmall", CIKM 2019, Sec. 4.2, B2I
routing) and ComiRec-DR (Cen et al., "Controllable Multi-Interest Framework
for Recommendation", KDD 2020, Sec. 3.2).

Each behaviour embedding e_i is mapped to a prediction û_ij = S_j e_i for
every interest j. The routing logits b_ij start from a fixed value, the
coupling weights are a softmax over interests, w_ij = softmax_j(b_ij), the
capsules are u_j = squash(Σ_i w_ij û_ij), and b_ij += u_j^T û_ij, for a fixed
number of iterations.

- ``shared=True`` (MIND's B2I): one bilinear map S for all pairs. Identical
  predictions would give identical capsules from equal logits, so b_ij starts
  from a fixed draw of N(0, std²) per (interest, position from the right),
  kept as a buffer (deterministic, never trained), as Sec. 4.2 prescribes.
- ``shared=False`` (ComiRec-DR): one map S_j per interest capsule; b_ij
  starts at 0, as in Sabour et al.'s Procedure 1.

The logit updates use predictions detached from the graph, so gradients reach
S only through the last iteration's weighted sum (the routing weights act as
constants in back-propagation). Padding behaviours get zero weight, and
``interest_mask`` (MIND's dynamic interest number) takes the inactive
capsules out of the softmax, so behaviours are shared among active ones only.
"""

from __future__ import annotations

import torch
from torch import nn


def squash(x: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """``|x|² / (1 + |x|²) · x / |x|`` over the last dim; 0 maps to 0 with finite gradients."""
    norm_sq = (x * x).sum(dim=-1, keepdim=True)  # (..., 1)
    return x * (norm_sq / (1.0 + norm_sq) / torch.sqrt(norm_sq + eps))


class CapsuleRouting(nn.Module):
    """Behaviours ``(B, L, D_in)`` with a ``(B, L)`` valid mask → interest capsules ``(B, K, D)``.

    >>> routing = CapsuleRouting(8, 8, num_interests=3, max_len=5, iterations=3, shared=True)
    >>> x, mask = torch.randn(2, 5, 8), torch.tensor([[0, 0, 1, 1, 1], [1] * 5]).bool()
    >>> routing(x, mask).shape
    torch.Size([2, 3, 8])
    """

    def __init__(
        self,
        input_dim: int,
        dim: int,
        *,
        num_interests: int,
        max_len: int,
        iterations: int,
        shared: bool,
        init_std: float = 1.0,
    ):
        super().__init__()
        if num_interests < 1 or iterations < 1:
            raise ValueError(f"num_interests ({num_interests}) and iterations ({iterations}) must be at least 1")
        self.num_interests = num_interests
        self.max_len = max_len
        self.iterations = iterations
        self.shared = shared
        if shared:
            self.bilinear = nn.Linear(input_dim, dim, bias=False)  # S
            draw = torch.randn(num_interests, max_len, generator=torch.Generator().manual_seed(0))
            initial = init_std * draw  # (K, max_len), fixed
        else:
            self.bilinear = nn.Parameter(torch.empty(num_interests, input_dim, dim))  # S_j per interest
            nn.init.normal_(self.bilinear, std=input_dim**-0.5)
            initial = torch.zeros(num_interests, max_len)
        self.register_buffer("initial_logits", initial)

    def predictions(self, x: torch.Tensor) -> torch.Tensor:
        """û_ij: ``(B, L, D_in) -> (B, K, L, D)``, or ``(B, 1, L, D)`` when the map is shared."""
        if self.shared:
            return self.bilinear(x).unsqueeze(1)  # (B, 1, L, D)
        return torch.einsum("bli,kid->bkld", x, self.bilinear)  # (B, K, L, D)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, interest_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
        u_hat = self.predictions(x)  # (B, K|1, L, D)
        u_fixed = u_hat.detach()
        logits = self.initial_logits[:, self.max_len - length :].expand(batch, -1, -1)  # (B, K, L)
        valid = mask.unsqueeze(1).to(x.dtype)  # (B, 1, L)
        for step in range(self.iterations):
            if interest_mask is not None:
                logits = logits.masked_fill(~interest_mask.unsqueeze(-1), torch.finfo(x.dtype).min)  # (B, K, L)
            weights = torch.softmax(logits, dim=1) * valid  # (B, K, L): over interests, 0 at padding
            source = u_hat if step == self.iterations - 1 else u_fixed
            capsules = squash((weights.unsqueeze(-1) * source).sum(dim=2))  # (B, K, D)
            if step < self.iterations - 1:
                logits = logits + (u_fixed * capsules.unsqueeze(2)).sum(dim=-1)  # (B, K, L)
        return capsules
