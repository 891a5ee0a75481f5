"""Losses built from model outputs; models return logits or embeddings only."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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

    Shapes: ``user, pos (B, D)``, ``pos_ids (B,)``, ``pos_logq (B,)``,
    ``neg (B, N, D)``, ``neg_ids, neg_logq (B, N)``.
    """
    logits = user @ pos.T / temperature  # (B, B)
    if pos_logq is not None:
        logits = logits - pos_logq.unsqueeze(0)
    hits = pos_ids.unsqueeze(0) == pos_ids.unsqueeze(1)  # (B, B)
    hits.fill_diagonal_(False)
    logits = logits.masked_fill(hits, float("-inf"))
    if neg is not None:
        neg_logits = torch.einsum("bd,bnd->bn", user, neg) / temperature  # (B, N)
        if neg_logq is not None:
            neg_logits = neg_logits - neg_logq
        neg_logits = neg_logits.masked_fill(neg_ids == pos_ids.unsqueeze(1), float("-inf"))
        logits = torch.cat([logits, neg_logits], dim=1)  # (B, B + N)
    target = torch.arange(user.shape[0], device=user.device)
    return F.cross_entropy(logits, target)
