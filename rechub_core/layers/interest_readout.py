"""Reading one vector out of a user's K interests, given a target item.

Multi-interest models score a training row's candidates with a single user
vector chosen by the row's positive item e ``(B, D)``:

- ``label_aware_attention``: MIND (Li et al., CIKM 2019, Sec. 4.4),
  softmax(pow(V e, p)) over the interests weights them; p → ∞ is hard
  attention on the closest interest, and ``p = inf`` computes that limit
  exactly (a large finite p does not: scores below 1 in magnitude all
  power to 0, and the softmax turns uniform). ``pow`` keeps the sign,
  ``sign(x)|x|^p``, so any p ≥ 1 is defined and the order of the scores is
  kept (a plain even power would rank a strongly negative interest first).
- ``nearest_interest``: ComiRec (Cen et al., KDD 2020, Sec. 3.4), the
  interest with the largest inner product with the target.
"""

from __future__ import annotations

import torch


def label_aware_attention(
    interests: torch.Tensor, target: torch.Tensor, p: float, active: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, K, D)``, ``(B, D)`` → ``(B, D)``; ``active (B, K)`` leaves the other interests out."""
    scores = torch.einsum("bkd,bd->bk", interests, target)  # (B, K)
    if p == float("inf"):  # the limit: hard attention on the closest (active) interest
        if active is not None:
            scores = scores.masked_fill(~active, float("-inf"))  # (B, K)
        best = scores.argmax(dim=-1)  # (B,)
        return interests[torch.arange(interests.shape[0], device=interests.device), best]  # (B, D)
    big = torch.finfo(scores.dtype).max
    powered = (scores.sign() * scores.abs().pow(p)).clamp(-big, big)  # (B, K); overflow stays finite
    if active is not None:
        powered = powered.masked_fill(~active, float("-inf"))  # (B, K)
    weights = torch.softmax(powered, dim=-1)  # (B, K)
    return (weights.unsqueeze(-1) * interests).sum(dim=1)  # (B, D)


def nearest_interest(interests: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B, K, D)``, ``(B, D)`` → the interest with the largest inner product with the target, ``(B, D)``."""
    best = torch.einsum("bkd,bd->bk", interests, target).argmax(dim=-1)  # (B,)
    return interests[torch.arange(interests.shape[0], device=interests.device), best]  # (B, D)
