"""Losses built from model outputs; models return logits or embeddings only."""

from __future__ import annotations

import math

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


def _accidental(neg_ids: torch.Tensor, pos_ids: torch.Tensor) -> torch.Tensor:
    """``(B, N)``: where a negative is the row's own positive."""
    return neg_ids == pos_ids.unsqueeze(1)


def pair_scores(user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw scores ``(B,)`` of the positives and ``(B, N)`` of the negatives."""
    return (user * pos).sum(dim=-1), torch.einsum("bd,bnd->bn", user, neg)


def pointwise_bce(user, pos, neg, pos_ids, neg_ids, *, temperature: float) -> torch.Tensor:
    """Binary cross-entropy on scores / T: the positive labelled 1, each negative 0 (accidental hits left out).

    Averaged over every scored (row, candidate), so a row weighs ``1 + N`` candidates.
    """
    s_pos, s_neg = pair_scores(user, pos, neg)
    keep = (~_accidental(neg_ids, pos_ids)).to(user.dtype)  # (B, N)
    pos_loss = F.softplus(-s_pos / temperature)  # -log sigmoid(s)
    neg_loss = F.softplus(s_neg / temperature) * keep  # -log(1 - sigmoid(s))
    return (pos_loss.sum() + neg_loss.sum()) / (len(pos_loss) + keep.sum())


def bpr(user, pos, neg, pos_ids, neg_ids, *, temperature: float) -> torch.Tensor:
    """BPR: mean over (positive, negative) pairs of ``-log sigmoid((s+ - s-) / T)``."""
    s_pos, s_neg = pair_scores(user, pos, neg)
    keep = (~_accidental(neg_ids, pos_ids)).to(user.dtype)
    loss = F.softplus(-(s_pos.unsqueeze(1) - s_neg) / temperature) * keep  # (B, N)
    return loss.sum() / keep.sum().clamp(min=1)


def triplet(user, pos, neg, pos_ids, neg_ids, *, margin: float) -> torch.Tensor:
    """Facebook EBR's triplet loss: mean over pairs of ``max(0, margin - (s+ - s-))``."""
    s_pos, s_neg = pair_scores(user, pos, neg)
    keep = (~_accidental(neg_ids, pos_ids)).to(user.dtype)
    loss = torch.relu(margin - (s_pos.unsqueeze(1) - s_neg)) * keep
    return loss.sum() / keep.sum().clamp(min=1)


def listwise_softmax(
    user, pos, neg, pos_ids, neg_ids, *, temperature: float,
    pos_logq: torch.Tensor | None = None, neg_logq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax over ``[positive, negatives]`` with scores / T, minus each candidate's log Q if given."""
    s_pos, s_neg = pair_scores(user, pos, neg)
    logits = torch.cat([s_pos.unsqueeze(1), s_neg], dim=1) / temperature  # (B, 1+N)
    if neg_logq is not None:
        logits = logits - torch.cat([pos_logq.unsqueeze(1), neg_logq], dim=1)
    hits = torch.cat([torch.zeros_like(pos_ids, dtype=torch.bool).unsqueeze(1), _accidental(neg_ids, pos_ids)], 1)
    logits = logits.masked_fill(hits, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def full_softmax(user: torch.Tensor, corpus: torch.Tensor, target: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Cross-entropy over every item: ``user (B, D)``, ``corpus (N, D)``, ``target (B,)`` rows of ``corpus``."""
    return F.cross_entropy(user @ corpus.T / temperature, target)


def hardest_in_batch(
    user: torch.Tensor, pos: torch.Tensor, pos_ids: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the ``k`` other in-batch positives the current model scores highest (Huang et al., KDD 2020).

    The choice is made without gradient; the returned vectors ``(B, k, D)`` keep
    theirs. Returns ``(vectors, ids (B, k))``; fewer distinct items than
    ``k + 1`` gives fewer negatives.
    """
    unique, inverse = torch.unique(pos_ids, return_inverse=True)  # (U,), (B,)
    first = torch.zeros_like(unique).scatter_reduce_(0, inverse, torch.arange(len(pos_ids)), "amin", include_self=False)
    candidates = pos[first]  # (U, D): one vector per distinct item
    k = min(k, len(unique) - 1)
    with torch.no_grad():
        scores = user @ candidates.T  # (B, U)
        scores.scatter_(1, inverse.unsqueeze(1), float("-inf"))  # never the row's own item
        top = scores.topk(k, dim=1).indices  # (B, k)
    return candidates[top], unique[top]


def shared_sampled_softmax(
    user, pos, pos_ids, neg, neg_ids, *, temperature: float,
    pos_logq: torch.Tensor | None = None, neg_logq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax whose negatives are every sample drawn for the batch, shared by all rows.

    As the papers' sampled softmax (TensorFlow's ``sampled_softmax_loss``): the
    ``B * N`` samples form one candidate set, each distinct item scored once
    and counted as often as it was drawn. With ``neg_logq (B, N)`` (log of an
    item's expected count among one row's ``N`` samples) the correction
    subtracts the log of its expected count among all ``B * N``, from the
    sampled items and, with ``pos_logq`` on the same scale, from the positive.
    A sample equal to a row's positive is masked for that row.
    """
    b, n, d = neg.shape
    flat_ids = neg_ids.reshape(-1)  # (B*N,)
    unique, inverse, counts = torch.unique(flat_ids, return_inverse=True, return_counts=True)  # (U,)
    first = torch.zeros_like(unique).scatter_reduce_(0, inverse, torch.arange(len(flat_ids)), "amin", include_self=False)
    bias = counts.log().to(user.dtype)  # (U,): a sample drawn k times counts k times
    shift = math.log(b)  # expected count among B rows' samples = B x among one row's
    pos_logit = (user * pos).sum(dim=-1) / temperature  # (B,)
    if neg_logq is not None:
        bias = bias - (neg_logq.reshape(-1)[first] + shift)
        pos_logit = pos_logit - (pos_logq + shift)
    logits = user @ neg.reshape(-1, d)[first].T / temperature + bias  # (B, U)
    logits = logits.masked_fill(unique.unsqueeze(0) == pos_ids.unsqueeze(1), float("-inf"))
    lse = torch.logaddexp(pos_logit, torch.logsumexp(logits, dim=1))
    return (lse - pos_logit).mean()
