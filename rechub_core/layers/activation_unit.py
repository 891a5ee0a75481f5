"""DIN's local activation unit: attention pooling of behaviours with unnormalised weights.

Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD
2018, Sec. 4.3, Eq. 3 and Fig. 2. The user's interest with respect to a
candidate ad ``t`` is

    v_U(t) = Σ_j a(e_j, t) e_j

over the real behaviours ``e_j``, where the activation weight ``a(e_j, t)`` is
a small feed-forward network's output. Its input follows Fig. 2 (the
behaviour, the ad, and their interaction, concatenated) in the form of the
authors' released code: ``[e_j, t, e_j - t, e_j ⊙ t]``; the figure's
"out product" is read as the element-wise product, the difference added
beside it. Hidden layers use Dice (or PReLU, see ``rechub_core.layers.dice``;
Dice's statistics are taken over real behaviours only) and the last layer is a
plain linear map to one number. The weights are deliberately *not* normalised
by a softmax (Sec. 4.3): their sum carries how strongly the user's history
relates to the ad. Padding positions get weight 0 and so contribute nothing;
a row without any real behaviour pools to a zero vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from rechub_core.layers.dice import activate, activation


class ActivationUnitAttention(nn.Module):
    """``(B, D)`` target, ``(B, L, D)`` behaviours, ``(B, L)`` mask → ``(B, D)``.

    >>> unit = ActivationUnitAttention(4, [6])
    >>> unit(torch.randn(2, 4), torch.randn(2, 3, 4), torch.tensor([[0, 1, 1], [0, 0, 0]]).bool()).shape
    torch.Size([2, 4])
    """

    def __init__(self, dim: int, hidden_dims: Sequence[int], activation_kind: Literal["dice", "prelu"] = "dice"):
        super().__init__()
        sizes = [4 * dim, *hidden_dims]
        self.hidden = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes, sizes[1:]))
        self.activations = nn.ModuleList(activation(activation_kind, o) for o in hidden_dims)
        self.out = nn.Linear(sizes[-1], 1)

    def weights(self, target: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Activation weights ``(B, L)``: the unit's output at real behaviours, 0 at padding."""
        t = target.unsqueeze(1).expand_as(behaviors)  # (B, L, D)
        h = torch.cat([behaviors, t, behaviors - t, behaviors * t], dim=-1)  # (B, L, 4D)
        for linear, act in zip(self.hidden, self.activations):
            h = activate(act, linear(h), mask)  # (B, L, H)
        scores = self.out(h).squeeze(-1)  # (B, L)
        return torch.where(mask, scores, torch.zeros_like(scores))

    def forward(self, target: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.weights(target, behaviors, mask)  # (B, L)
        return (a.unsqueeze(-1) * behaviors).sum(dim=1)  # (B, D)
