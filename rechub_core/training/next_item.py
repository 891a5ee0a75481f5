"""Next-item training of sequential models with SASRec's objective.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, Sec.
III-E: at every position t of a left-padded sequence the state predicts item
t+1; each real target is scored against one negative drawn uniformly from the
items the user has not interacted with, and the loss is binary cross-entropy
on (positive, negative), summed per position and averaged over real positions.
The model supplies ``sequence_states(ids) -> (B, L, D)`` and
``item_embedding({"item_id": ids}) -> (N, D)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.data.tables import Batch, TensorTable
from rechub_core.training.optim import trains_with_sparse_embeddings
from rechub_core.training.trainer import TrainConfig, epoch_batches, optimizer_for


def sample_unseen(seq: torch.Tensor, n_items: int, num: int, generator: torch.Generator) -> torch.Tensor:
    """``(B, num)`` ids drawn uniformly from ``1..n_items-1`` minus the ids of each row of ``seq (B, M)``.

    Exact and vectorised, without rejection: with a row's distinct seen ids
    sorted, ``e_1 < e_2 < ...``, the r-th (0-based) unseen id is
    ``r + 1 + #{i : e_i - i <= r}`` (``e_i - i`` unseen ids lie below ``e_i``),
    so a uniform rank r among the row's unseen ids maps to an id directly.
    A row that has seen every item gets 0 (no negative).
    """
    b, m = seq.shape
    s = seq.sort(dim=1).values  # (B, M)
    distinct = s > 0
    distinct[:, 1:] &= s[:, 1:] != s[:, :-1]  # first occurrence of each non-padding id
    rank = distinct.long().cumsum(dim=1)  # (B, M): 1-based rank among distinct seen ids
    n_unseen = (n_items - 1) - rank[:, -1]  # (B,)
    big = n_items + m  # above every rank r, so it never counts
    below = torch.where(distinct, s - rank, big).sort(dim=1).values  # (B, M): e_i - i, ascending
    u = torch.rand((b, num), generator=generator, dtype=torch.float64)
    r = (u * n_unseen.unsqueeze(1)).long().clamp(max=n_unseen.clamp(min=1).unsqueeze(1) - 1)  # (B, num)
    ids = r + 1 + torch.searchsorted(below, r, right=True)  # (B, num)
    return torch.where(n_unseen.unsqueeze(1) > 0, ids, 0)


def next_item_loss(model: nn.Module, seq: torch.Tensor, negatives: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean BCE over real targets of ``seq (B, L+1)`` with ``negatives (B, L)``, and the number of targets.

    Inputs are ``seq[:, :-1]``, targets ``seq[:, 1:]``; a target counts where
    both it and its input are real items (a state at a padding input is zero
    and predicts nothing). A negative of 0 (row saw every item) is left out.
    """
    inputs, targets = seq[:, :-1], seq[:, 1:]  # (B, L), (B, L)
    real = (inputs > 0) & (targets > 0)  # (B, L)
    states = model.sequence_states(inputs)  # (B, L, D)
    b, length, dim = states.shape
    ids = torch.stack([targets, negatives], dim=-1)  # (B, L, 2)
    items = model.item_embedding({"item_id": ids.reshape(-1)}).reshape(b, length, 2, dim)  # (B, L, 2, D)
    logits = (states.unsqueeze(2) * items).sum(dim=-1)  # (B, L, 2)
    labels = torch.zeros_like(logits)
    labels[..., 0] = 1.0
    weight = torch.stack([real, real & (negatives > 0)], dim=-1).to(logits.dtype)  # (B, L, 2)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # (B, L, 2)
    count = int(real.sum())
    return (bce * weight).sum() / max(count, 1), count


@trains_with_sparse_embeddings
def fit_next_item(
    model: nn.Module,
    sequences: TensorTable,
    n_items: int,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    auxiliary: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train on ``sequences["seq"]`` ``(N, L+1)``, left-padded item ids, most recent last.

    Fresh negatives for every batch (one per target position, unseen in the
    row's sequence) and the shuffling both come from ``generator``. Returns
    one ``{"epoch", "train_loss"}`` dict per epoch. ``auxiliary(model, batch)``,
    if given, is added to every step's loss on the batch of ``sequences`` rows
    (e.g. ``rechub_core.data.augment.SequenceContrast`` over the ``hist`` and
    ``hist_ts`` columns, the inputs ``seq[:, :-1]`` and their times) and
    reported as ``train_auxiliary_loss`` (per target, as ``train_loss``).
    """
    optimizer = optimizer_for(model, config)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count, extra_total = 0.0, 0, 0.0
        for batch in epoch_batches(sequences, config, generator=generator, epoch=epoch, desc=desc):
            seq = batch["seq"]  # (B, L+1)
            negatives = sample_unseen(seq, n_items, seq.shape[1] - 1, generator)  # (B, L)
            loss, n = next_item_loss(model, seq, negatives)
            if n == 0:
                continue
            extra = auxiliary(model, batch) if auxiliary is not None else None
            optimizer.zero_grad(set_to_none=True)
            (loss if extra is None else loss + extra).backward()
            optimizer.step()
            total += loss.item() * n
            count += n
            if extra is not None:
                extra_total += extra.item() * n
        record = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if auxiliary is not None:
            record["train_auxiliary_loss"] = extra_total / max(count, 1)
        history.append(record)
    model.eval()
    return history
