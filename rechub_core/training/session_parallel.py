"""GRU4Rec's training: session-parallel mini-batches with the ranking-max losses.

Hidasi et al., "Session-based Recommendations with Recurrent Neural
Networks", ICLR 2016, Sec. 3.1.1-3.1.2; losses of Hidasi & Karatzoglou,
"Recurrent Neural Networks with Top-k Gains for Session-based
Recommendations", CIKM 2018, Sec. 4.

A session is a run of one user's consecutive events (the log is ordered by
user, then time); sessions of fewer than two events are dropped. Each epoch
shuffles the sessions, lays them end to end and cuts the stream into
``batch_size`` equal parallel slots. Step t feeds every slot's t-th event and
targets the next event of the same session; a slot's state restarts from
``initial_state`` where a session starts. Each output is scored against the
targets of all slots: the other slots' targets are the negatives (one equal
to the row's own target is masked), and only real next events count, as
rows and as negatives. As in the CIKM 2018 paper (Sec. 4.1), ``extra_negatives``
further samples per step, shared by all slots, are drawn with probability
proportional to ``support ** sample_alpha`` (support = the item's number of
events): alpha 0 is uniform over items, 1 is popularity. The state is detached, and the parameters updated,
every ``bptt`` steps.

Departure: the paper hands a slot the next session when its current one
ends; cutting the stream into equal slots instead keeps every slot busy
until the last step, at the price that a session cut by a slot boundary
continues in the next slot from a fresh state (at most ``batch_size - 1``
sessions an epoch). Every transition of every session is still trained on
exactly once an epoch.

The model supplies ``initial_state(S) -> h`` (slot dimension second, as
``nn.GRU``'s ``(layers, S, H)``), ``step(ids (S,), h) -> (out (S, D), h)``
and ``item_embedding({"item_id": ids}) -> (N, D)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from rechub_core.training.objectives import SessionParallel
from rechub_core.training.optim import trains_with_sparse_embeddings
from rechub_core.training.trainer import TrainConfig, optimizer_for


def _negative_log_weights(neg: torch.Tensor, mask: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
    """``log s_j``: log-softmax over each row's negatives ``(S, N)``, ``-inf`` where not ``mask``.

    A row without any negative (``has (S,)`` false) keeps its raw scores:
    finite weights, so no NaN reaches the gradients; the losses give it 0.
    """
    hidden = ~mask & has.unsqueeze(1)  # (S, N)
    return torch.log_softmax(neg.masked_fill(hidden, -torch.inf), dim=1)  # (S, N)


def bpr_max(pos: torch.Tensor, neg: torch.Tensor, mask: torch.Tensor, reg: float) -> torch.Tensor:
    """BPR-max per row: ``-log sum_j s_j sigmoid(r_i - r_j) + reg * sum_j s_j r_j^2``, ``s = softmax(r_neg)``.

    ``pos (S,)`` is r_i, ``neg (S, N)`` the scores r_j, ``mask (S, N)`` which
    of them are negatives. A row without a negative gives 0. The first term
    is a log-sum-exp of ``log s_j + log sigmoid(r_i - r_j)``, so it cannot underflow.
    """
    has = mask.any(dim=1)  # (S,)
    log_s = _negative_log_weights(neg, mask, has)  # (S, N)
    ranking = -torch.logsumexp(log_s + F.logsigmoid(pos.unsqueeze(1) - neg), dim=1)  # (S,)
    penalty = (log_s.exp() * neg.square()).sum(dim=1)  # (S,)
    return torch.where(has, ranking + reg * penalty, 0.0)


def top1_max(pos: torch.Tensor, neg: torch.Tensor, mask: torch.Tensor, reg: float) -> torch.Tensor:
    """TOP1-max per row: ``sum_j s_j (sigmoid(r_j - r_i) + reg * sigmoid(r_j^2))``, ``s = softmax(r_neg)``.

    The paper's loss is ``reg = 1``: its score regularisation ``sigmoid(r_j^2)``
    is part of TOP1; ``reg`` weighs it (0 drops it). A row without a negative gives 0.
    """
    has = mask.any(dim=1)  # (S,)
    s = _negative_log_weights(neg, mask, has).exp()  # (S, N)
    per_negative = torch.sigmoid(neg - pos.unsqueeze(1)) + reg * torch.sigmoid(neg.square())  # (S, N)
    return torch.where(has, (s * per_negative).sum(dim=1), 0.0)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "bpr_max": bpr_max,
    "top1_max": top1_max,
}


def session_parallel_loss(
    scores: torch.Tensor, targets: torch.Tensor, objective: SessionParallel, extra: torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """Summed loss over the rows that count, and their number.

    ``scores (S, S + M)``: row i's output against slot j's target, then
    against the ``M`` shared ``extra`` samples; ``targets (S,)``, 0 where a
    slot has no next event. Row i counts if its target is real and it has a
    negative: a real target of another slot, or a sample, with another id.
    """
    real = targets > 0  # (S,)
    candidates = targets if extra is None else torch.cat([targets, extra])  # (S + M,)
    negatives = (candidates > 0).unsqueeze(0) & (candidates.unsqueeze(0) != targets.unsqueeze(1))  # (S, S + M)
    rows = real & negatives.any(dim=1)  # (S,)
    pos = scores[:, : len(targets)].diagonal()  # (S,)
    loss = LOSSES[objective.loss](pos, scores, negatives, objective.score_regularization)  # (S,)
    return (loss * rows.to(loss.dtype)).sum(), int(rows.sum())


def sessions(users: torch.Tensor, min_length: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """First event index and length of each session (run of one user) of at least ``min_length`` events."""
    n = len(users)
    change = torch.ones(n, dtype=torch.bool)
    change[1:] = users[1:] != users[:-1]
    starts = change.nonzero().squeeze(1)  # (K,)
    lengths = torch.diff(starts, append=torch.tensor([n]))  # (K,)
    keep = lengths >= min_length
    return starts[keep], lengths[keep]


@dataclass(frozen=True)
class SlotLayout:
    """One epoch's steps, ``(S, T)`` each: slot s feeds ``inputs[s, t]`` at step t."""

    inputs: torch.Tensor  # item ids, 0 past the end of the stream
    targets: torch.Tensor  # the next event of the same session, 0 where there is none
    reset: torch.Tensor  # bool: the slot starts from the initial state before step t


def slot_layout(
    starts: torch.Tensor, lengths: torch.Tensor, items: torch.Tensor, num_slots: int, generator: torch.Generator
) -> SlotLayout:
    """Shuffle the sessions, lay them end to end and cut the stream into ``num_slots`` equal slots."""
    order = torch.randperm(len(starts), generator=generator)
    length = lengths[order]  # (K,)
    first = torch.cumsum(length, 0) - length  # (K,): where each session begins in the stream
    total = int(length.sum())
    source = torch.repeat_interleave(starts[order] - first, length) + torch.arange(total)  # (T_all,): event index
    stream = items[source]  # (T_all,)
    has_next = torch.ones(total, dtype=torch.bool)
    has_next[first + length - 1] = False  # a session's last event targets nothing
    targets = torch.where(has_next, torch.cat([stream[1:], stream.new_zeros(1)]), 0)  # (T_all,)
    session_start = torch.zeros(total, dtype=torch.bool)
    session_start[first] = True
    steps = math.ceil(total / num_slots)
    pad = steps * num_slots - total

    def slots(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, pad)).reshape(num_slots, steps)  # (S, T)

    reset = slots(session_start)
    reset[:, 0] = True  # a slot begins from the initial state, also mid-session
    return SlotLayout(slots(stream), slots(targets), reset)


@trains_with_sparse_embeddings
def fit_session_parallel(
    model: nn.Module,
    users: torch.Tensor,
    items: torch.Tensor,
    objective: SessionParallel,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train on a flat event log ``users (N,)``, ``items (N,)`` (ids >= 1), ordered by user, then time.

    ``config.batch_size`` is the number of parallel slots; the session order
    of every epoch comes from ``generator``. Returns one
    ``{"epoch", "train_loss"}`` dict per epoch (mean loss per counted target).
    """
    if users.shape != items.shape or users.dim() != 1:
        raise ValueError(f"users and items must be 1-d, of one length; got {tuple(users.shape)}, {tuple(items.shape)}")
    if len(items) and int(items.min()) < 1:
        raise ValueError("items must be ids >= 1 (0 is padding)")
    starts, lengths = sessions(users)
    if len(starts) == 0:
        raise ValueError("no session has two or more events: nothing to train on")
    support = torch.bincount(items).double()  # (N,): each item's number of events
    sampling = torch.where(support > 0, support.pow(objective.sample_alpha), 0.0)  # supp ** alpha (CIKM 2018)
    optimizer = optimizer_for(model, config)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        layout = slot_layout(starts, lengths, items, config.batch_size, generator)
        num_slots, steps = layout.inputs.shape
        h0 = model.initial_state(num_slots)
        h = h0
        total, count = 0.0, 0
        window, window_count = torch.zeros(()), 0
        progress = tqdm(range(steps), desc=f"{desc} epoch {epoch}/{config.epochs}", leave=False, disable=None)
        for t in progress:
            start = layout.reset[:, t].reshape(1, num_slots, *[1] * (h.dim() - 2))  # broadcast over h
            h = torch.where(start, h0, h)
            out, h = model.step(layout.inputs[:, t], h)  # (S, D)
            targets = layout.targets[:, t]  # (S,)
            extra = None
            candidates = targets
            if objective.extra_negatives:  # shared by every slot of the step
                extra = torch.multinomial(sampling, objective.extra_negatives, replacement=True, generator=generator)
                candidates = torch.cat([targets, extra])
            scores = out @ model.item_embedding({"item_id": candidates}).T  # (S, S + M)
            loss, n = session_parallel_loss(scores, targets, objective, extra)
            window, window_count = window + loss, window_count + n
            if (t + 1) % objective.bptt == 0 or t == steps - 1:
                if window_count:
                    optimizer.zero_grad(set_to_none=True)
                    (window / window_count).backward()
                    optimizer.step()
                    total += window.item()
                    count += window_count
                h = h.detach()  # truncated back-propagation through time
                window, window_count = torch.zeros(()), 0
        history.append({"epoch": epoch, "train_loss": total / max(count, 1)})
    model.eval()
    return history
