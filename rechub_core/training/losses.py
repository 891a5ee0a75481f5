"""Losses built from model outputs; models return logits or embeddings only."""

from __future__ import annotations

import torch


def sampled_softmax(
    user: torch.Tensor,
    pos: torch.Tensor,
    pos_ids: torch.Tensor,
    *,
    temperature: float,
    pos_logq: torch.Tensor | None = None,
    neg: torch.Tensor | None = None,
    neg_ids: torch.Tensor | None = None,
    neg_logq: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch softmax, optionally mixed with sampled negatives.

    Row ``i`` scores its positive ``pos[i]`` against the other rows' positives
    (in-batch negatives) and, if given, its own sampled negatives ``neg[i]``.
    Scores are divided by ``temperature``. Log-Q correction (Yi et al., RecSys
    2019) subtracts the log of each candidate's expected count under the
    process that put it in the softmax: ``pos_logq`` for in-batch items,
    ``neg_logq`` for sampled ones. A candidate equal to the row's positive
    (an accidental hit) is masked out.

    Computed over the batch's distinct items, one column each (the same value
    and gradient as the ``(B, B)`` form, without its size); rows with the same
    positive id must carry the same ``pos`` vector, as ``fit_two_tower`` gives.

    Shapes: ``user, pos (B, D)``, ``pos_ids (B,)``, ``pos_logq (B,)``,
    ``neg (B, N, D)``, ``neg_ids, neg_logq (B, N)``.
    """
    scaled = user / temperature  # (B, D): dividing this side is cheaper than dividing (B, B) scores
    # score each distinct in-batch item once; a row's positive is its item's column, and an item
    # that is the positive of k rows counts k times among the others' negatives (as k columns would)
    unique, inverse, counts = torch.unique(pos_ids, return_inverse=True, return_counts=True)  # (U,), (B,), (U,)
    first = torch.zeros_like(unique).scatter_reduce_(0, inverse, torch.arange(len(pos_ids)), "amin", include_self=False)
    bias = counts.log().to(user.dtype)  # (U,)
    if pos_logq is not None:
        bias = bias - pos_logq[first].to(user.dtype)
    # [u/T, 1] · [v, bias] = u·v/T + bias in one matmul
    logits = torch.cat([scaled, torch.ones_like(scaled[:, :1])], dim=1) @ torch.cat([pos[first], bias[:, None]], dim=1).T
    target = logits.gather(1, inverse[:, None]).squeeze(1)  # (B,): includes log k of the row's own item
    lse = torch.logsumexp(logits, dim=1)  # (B,)
    if neg is not None:
        neg_logits = torch.einsum("bd,bnd->bn", scaled, neg)  # (B, N)
        if neg_logq is not None:
            neg_logits = neg_logits - neg_logq
        neg_logits = neg_logits.masked_fill(neg_ids == pos_ids.unsqueeze(1), float("-inf"))
        lse = torch.logaddexp(lse, torch.logsumexp(neg_logits, dim=1))
    # the row's own positive counts once, not k times: take (1 - 1/k) of its share out of the sum
    own = counts[inverse].to(user.dtype)  # (B,)
    lse = lse + torch.log1p(-torch.exp(target - lse) * (1 - 1 / own))
    return (lse - (target - own.log())).mean()
