"""Search of a long behaviour sequence for the behaviours relevant to a target item.

The General Search Unit of SIM (Pi et al., "Search-based User Interest
Modeling with Lifelong Sequential Behavior Data for Click-Through Rate
Prediction", CIKM 2020, Sec. 4.1) keeps, out of a user's lifelong behaviours,
the top ``k`` by a relevance score ``r_i``:

- hard search: ``r_i = Sign(C_i = C_a)``, the behaviours of the target's
  category; among them the most recent ``k`` (``hard_search``);
- soft search: ``r_i = (W_b e_i) ⊙ (W_a e_a)^T``, an inner product of the
  projected behaviour and target embeddings (``SoftSearch``), top ``k`` of it
  (the paper runs an approximate maximum-inner-product search; this is exact).

Both return the chosen positions ``(B, k)`` and a ``(B, k)`` mask of the ones
that are real behaviours: padding (and, in hard search, a behaviour of another
category) is never chosen, and a row with fewer than ``k`` candidates gets
masked slots. Selection is one ``topk`` over the sequence, no loop over rows,
so a caller can gather just the chosen ids and embed ``k`` behaviours, not all.
"""

from __future__ import annotations

import torch
from torch import nn


def top_k(scores: torch.Tensor, candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` highest ``(B, L)`` scores among each row's ``candidates`` (bool ``(B, L)``): positions
    ``(B, k)``, best first, and ``(B, k)`` which of them are candidates (``k`` is capped at ``L``)."""
    k = min(k, scores.shape[1])
    masked = scores.masked_fill(~candidates, torch.finfo(scores.dtype).min)  # (B, L)
    index = masked.topk(k, dim=1).indices  # (B, k)
    return index, candidates.gather(1, index)


def hard_search(
    categories: torch.Tensor, target_category: torch.Tensor, real: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most recent real behaviours of the target's category, most recent first.

    ``categories`` and ``real`` are ``(B, L)`` in time order (the last position is the
    latest, as in a left-padded window), ``target_category`` is ``(B,)``.

    >>> index, chosen = hard_search(torch.tensor([[0, 2, 1, 2]]), torch.tensor([2]),
    ...                             torch.tensor([[False, True, True, True]]), k=3)
    >>> index[chosen].tolist()
    [3, 1]
    """
    recency = torch.arange(categories.shape[1], device=categories.device, dtype=torch.float32)  # (L,)
    same = real & (categories == target_category.unsqueeze(1))  # (B, L)
    return top_k(recency.expand(categories.shape), same, k)


class SoftSearch(nn.Module):
    """Relevance ``r = <W_b e_i, W_a e_a>`` of ``(B, L, D)`` behaviours to a ``(B, D)`` target, and its top ``k``.

    ``scores(target, behaviors) -> (B, L)``; ``forward(target, behaviors, real, k)`` →
    positions ``(B, k)``, chosen mask ``(B, k)`` and the scores ``(B, L)``.

    >>> search = SoftSearch(4, 3)
    >>> index, chosen, scores = search(torch.randn(2, 4), torch.randn(2, 5, 4), torch.ones(2, 5).bool(), k=2)
    >>> index.shape, chosen.shape, scores.shape
    (torch.Size([2, 2]), torch.Size([2, 2]), torch.Size([2, 5]))
    """

    def __init__(self, dim: int, projection_dim: int):
        super().__init__()
        self.target = nn.Linear(dim, projection_dim, bias=False)  # W_a
        self.behavior = nn.Linear(dim, projection_dim, bias=False)  # W_b

    def scores(self, target: torch.Tensor, behaviors: torch.Tensor) -> torch.Tensor:
        query = self.target(target).unsqueeze(-1)  # (B, P, 1)
        return torch.matmul(self.behavior(behaviors), query).squeeze(-1)  # (B, L)

    def forward(
        self, target: torch.Tensor, behaviors: torch.Tensor, real: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores = self.scores(target, behaviors)  # (B, L)
        index, chosen = top_k(scores, real, k)
        return index, chosen, scores
