"""Trainers: the loop, the optimizer, the loss and early stopping live here.

``fit_pointwise`` trains anything that maps a batch to logits ``(B,)`` or
``(B, T)`` with BCE-with-logits; ``fit_two_tower`` trains a matching model's
two towers with any shared objective of ``rechub_core.training.objectives``.
Both feed models from ``TensorTable`` index slices and report per-epoch figures.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from rechub_core.data.sampling import StreamingFrequency
from rechub_core.data.tables import Batch, BatchSource, TensorTable
from rechub_core.layers.task_scale import TaskScale
from rechub_core.metrics import auc
from rechub_core.training.balancing import Balancer, Balancing, Equal
from rechub_core.training.losses import (
    bpr,
    full_softmax,
    hardest_in_batch,
    pointwise_bce,
    sampled_softmax,
    shared_sampled_softmax,
    triplet,
)
from rechub_core.training.objectives import (
    FullSoftmax,
    InBatch,
    Listwise,
    Mixed,
    Objective,
    Pairwise,
    Pointwise,
    Triplet,
)
from rechub_core.training.optim import Optimizers, adam_for, trains_with_sparse_embeddings


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 0.0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")


@dataclass
class EarlyStopping:
    """Keep the best epoch on the validation set; stop after ``patience`` epochs without gain."""

    patience: int = 1
    # auc: mean AUC over the binary tasks; logloss: their mean logloss; loss: the mean of every task's
    # validation loss (logloss for binary tasks, squared error for regression tasks)
    monitor: Literal["auc", "logloss", "loss"] = "auc"

    def __post_init__(self):
        if self.patience < 1:
            raise ValueError("patience must be at least 1")


def optimizer_for(model: nn.Module, config: TrainConfig) -> Optimizers:
    """Adam: row-sparse on embedding tables, fused on the rest (see ``rechub_core.training.optim``).

    The ``fit_*`` functions train with ``trains_with_sparse_embeddings``, which gives the tables sparse gradients.
    """
    return adam_for(model, config.learning_rate, config.weight_decay)


def _labels(batch: Batch, label_names: Sequence[str]) -> torch.Tensor:
    return torch.stack([batch[n].float() for n in label_names], dim=1)  # (B, T)


def epoch_batches(
    train: BatchSource, config: TrainConfig, *, generator: torch.Generator, epoch: int, desc: str, drop_last: bool = False
) -> Iterator[Batch]:
    """One seeded shuffled pass over ``train``, with a progress bar (shown on a terminal only)."""
    return tqdm(
        train.batches(config.batch_size, shuffle=True, generator=generator, drop_last=drop_last),
        total=train.num_batches(config.batch_size, drop_last=drop_last),
        desc=f"{desc} epoch {epoch}/{config.epochs}",
        leave=False,
        disable=None,
    )


@torch.no_grad()
def predict(fn: Callable[[Batch], torch.Tensor], table: TensorTable, batch_size: int = 8192) -> np.ndarray:
    """Concatenated outputs of ``fn`` (a model in eval mode, or one of its towers) over ``table``."""
    return torch.cat([fn(b) for b in table.batches(batch_size)]).numpy()


def task_losses(
    outputs: torch.Tensor, labels: torch.Tensor, regression: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean loss per task ``(T,)`` of outputs and labels ``(B, T)``: squared error where ``regression (T,)``
    is set, divided by ``scale (T,)`` squared when given (the error in standard deviations of a
    ``TaskScale`` model's target), BCE-with-logits elsewhere."""
    bce = F.binary_cross_entropy_with_logits(outputs, labels, reduction="none").mean(0)  # (T,)
    if not regression.any():
        return bce
    error = (outputs - labels).square().mean(0)
    if scale is not None:
        error = error / scale.square()
    return torch.where(regression, error, bce)


def _loss_scale(model: nn.Module) -> torch.Tensor | None:
    """A ``TaskScale`` model's per-task scale: its squared errors count in its targets' standard deviations."""
    return model.scale if isinstance(model, TaskScale) else None


def _evaluate(
    model: nn.Module, table: TensorTable, label_names: Sequence[str], regression: Sequence[str], batch_size: int
) -> dict[str, float]:
    model.eval()
    outputs = predict(model, table, batch_size).reshape(len(table), -1)  # (N, T)
    labels = np.stack([table[n].numpy() for n in label_names], axis=1).astype(np.float32)
    is_regression = torch.tensor([n in regression for n in label_names])
    losses = task_losses(torch.from_numpy(outputs), torch.from_numpy(labels), is_regression, _loss_scale(model))
    binary = [t for t, n in enumerate(label_names) if n not in regression]
    out = {"valid_loss": float(losses.mean())}
    if binary:
        out["valid_logloss"] = float(losses[binary].mean())
    for t, name in enumerate(label_names):
        if name in regression:
            out[f"valid_{name}_rmse"] = float(losses[t].sqrt())
        elif 0 < labels[:, t].sum() < len(labels):
            out[f"valid_{name}_auc"] = auc(labels[:, t], outputs[:, t])
    aucs = [out[f"valid_{n}_auc"] for n in label_names if f"valid_{n}_auc" in out]
    out["valid_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    return out


def training_outputs(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | float]:
    """Logits and the extra training loss of a model that has one.

    A model with ``logits_and_auxiliary_loss(batch) -> (logits, loss)`` (DIEN's
    auxiliary next-behaviour loss, already weighted) computes both in one pass; its
    ``forward`` returns the same logits alone. Other models add nothing.
    """
    both = getattr(model, "logits_and_auxiliary_loss", None)
    if both is None:
        return model(batch), 0.0
    return both(batch)


@trains_with_sparse_embeddings
def fit_pointwise(
    model: nn.Module,
    train: BatchSource,
    label_names: Sequence[str],
    config: TrainConfig,
    *,
    generator: torch.Generator,
    valid: TensorTable | None = None,
    early_stopping: EarlyStopping | None = None,
    regression: Sequence[str] = (),
    balancing: Balancing | None = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train outputs ``(B,)`` / ``(B, T)`` against ``label_names``: BCE-with-logits for binary labels,
    squared error for those named in ``regression``, combined by ``balancing``
    (``rechub_core.training.balancing``; default: their sum), plus a model's
    auxiliary loss (see ``training_outputs``).

    With ``valid``, keeps the weights of the epoch with the best validation
    figure (``early_stopping.monitor``) and stops after
    ``early_stopping.patience`` epochs without gain. Returns one dict of
    figures per epoch, with each task's balancing weight (``weight_<task>``) for several tasks.
    """
    stopping = early_stopping or EarlyStopping()
    binary = [n for n in label_names if n not in regression]
    if stopping.monitor in ("auc", "logloss") and valid is not None and not binary:
        raise ValueError(f"early stopping on {stopping.monitor!r} needs a binary task; all of {list(label_names)} "
                         "are regression tasks (monitor 'loss' works for any)")
    optimizer = optimizer_for(model, config)
    is_regression = [n in regression for n in label_names]
    balancer = Balancer(balancing or Equal(), model, label_names, is_regression)
    scale = _loss_scale(model)
    history: list[dict[str, float]] = []
    best_score, best_state, stale = -math.inf, None, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count = 0.0, 0
        for batch in epoch_batches(train, config, generator=generator, epoch=epoch, desc=desc):
            outputs, auxiliary = training_outputs(model, batch)
            outputs = outputs.reshape(len(batch[label_names[0]]), -1)  # (B, T)
            losses = task_losses(outputs, _labels(batch, label_names), balancer.regression, scale)  # (T,)
            optimizer.zero_grad(set_to_none=True)
            loss = balancer.backward(losses, auxiliary)
            optimizer.step()
            total += float(loss) * outputs.shape[0]
            count += outputs.shape[0]
        record = {"epoch": epoch, "train_loss": total / count}
        if len(label_names) > 1:
            record.update({f"weight_{n}": w for n, w in zip(label_names, balancer.weights())})
        if valid is not None:
            record.update(_evaluate(model, valid, label_names, regression, config.batch_size * 4))
            score = {"auc": record["valid_auc"], "logloss": -record.get("valid_logloss", math.nan),
                     "loss": -record["valid_loss"]}[stopping.monitor]
            if score > best_score:
                best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
        history.append(record)
        if valid is not None and stale >= stopping.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _row_users(model: nn.Module, batch: Batch, items: TensorTable, pos: torch.Tensor, pos_ids: torch.Tensor):
    """The user vector ``(B, D)`` that scores each row's candidates.

    A model with one user vector per item cluster (``task_embedding``, Kuaishou
    EBR) uses the positive's cluster's; other multi-interest models reduce
    their ``(B, K, D)`` with ``interest_for(user, pos)``.
    """
    if hasattr(model, "task_embedding"):
        return model.task_embedding(batch, items[model.group_feature][pos_ids])  # items row = item id
    user = model.user_embedding(batch)
    return model.interest_for(user, pos) if user.dim() == 3 else user


def two_tower_loss(
    model: nn.Module,
    batch: Batch,
    items: TensorTable,
    objective: Objective,
    *,
    pos_logq: torch.Tensor | None = None,
    negatives: str | None = None,
    negative_logq: torch.Tensor | None = None,
) -> torch.Tensor:
    """One batch's loss under a shared two-tower ``objective`` (see ``rechub_core.training.objectives``).

    ``pos_logq (B,)``: log of each row's positive's expected count among a
    batch's positives (in-batch log-Q); ``negatives``: the batch column of sampled negatives
    ``(B, N)``; ``negative_logq[i]``: log of item i's expected count among a
    row's sampled negatives.
    """
    pos_ids = batch["item_id"]  # (B,)
    full = isinstance(objective, FullSoftmax)
    if full:
        neg_ids = torch.arange(1, len(items), dtype=pos_ids.dtype)  # every real item
    elif negatives is not None:
        neg_ids = batch[negatives]  # (B, N)
    else:
        neg_ids = pos_ids[:0]
    # each distinct item goes through the item tower once per batch
    unique, inverse = torch.unique(torch.cat([pos_ids, neg_ids.reshape(-1)]), return_inverse=True)
    vectors = model.item_embedding(items.take(unique))[inverse]  # (B + |neg|, D)
    pos = vectors[: len(pos_ids)]  # (B, D)
    user = _row_users(model, batch, items, pos, pos_ids)  # (B, D)
    if full:
        return full_softmax(user, vectors[len(pos_ids) :], pos_ids - 1, temperature=objective.temperature)
    if isinstance(objective, InBatch):
        return sampled_softmax(user, pos, pos_ids, temperature=objective.temperature, pos_logq=pos_logq)
    neg = vectors[len(pos_ids) :].reshape(*neg_ids.shape, -1)  # (B, N, D)
    if isinstance(objective, Mixed):
        return sampled_softmax(
            user, pos, pos_ids, temperature=objective.temperature, pos_logq=pos_logq,
            neg=neg, neg_ids=neg_ids, neg_logq=negative_logq[neg_ids] if negative_logq is not None else None,
        )
    if isinstance(objective, Listwise):
        logq = {}
        if negative_logq is not None:
            logq = {"pos_logq": negative_logq[pos_ids], "neg_logq": negative_logq[neg_ids]}
        return shared_sampled_softmax(user, pos, pos_ids, neg, neg_ids, temperature=objective.temperature, **logq)
    if isinstance(objective, Pointwise):
        return pointwise_bce(user, pos, neg, pos_ids, neg_ids, temperature=objective.temperature)
    if objective.hard_negatives:  # Pairwise / Triplet: add the current model's hardest in-batch items
        hard, hard_ids = hardest_in_batch(user, pos, pos_ids, objective.hard_negatives)
        neg, neg_ids = torch.cat([neg, hard], dim=1), torch.cat([neg_ids, hard_ids], dim=1)  # (B, N+k, D)
    if isinstance(objective, Pairwise):
        return bpr(user, pos, neg, pos_ids, neg_ids, temperature=objective.temperature)
    if isinstance(objective, Triplet):
        return triplet(user, pos, neg, pos_ids, neg_ids, margin=objective.margin)
    raise ValueError(f"{objective.name!r} is not a two-tower objective")


def needs_sampled_negatives(objective: Objective) -> bool:
    """Whether the objective scores the ``negative_sample`` stage's negatives."""
    return isinstance(objective, Pointwise | Pairwise | Triplet | Listwise | Mixed)


@trains_with_sparse_embeddings
def fit_two_tower(
    model: nn.Module,
    train: TensorTable,
    items: TensorTable,
    config: TrainConfig,
    *,
    objective: Objective,
    generator: torch.Generator,
    item_logq: torch.Tensor | None = None,
    negatives: str | None = None,
    negative_logq: torch.Tensor | None = None,
    auxiliary: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train ``user_embedding`` / ``item_embedding`` with a shared two-tower ``objective``.

    ``train`` rows hold user features and the positive ``item_id``; ``items``
    holds every item's features, row = item id. Multi-interest models reduce
    their ``(B, K, D)`` user to one vector per row (see ``_row_users``);
    a model with ``regularization()`` has it added to every step's loss.
    ``item_logq[i]`` is the log of item i's expected count among a batch's
    positives, used where the objective's ``logq_correction`` asks; with ``InBatch(logq_correction="streaming")`` it comes from
    ``StreamingFrequency`` over the batches seen so far instead. ``negatives``
    and ``negative_logq`` as in ``two_tower_loss``. ``auxiliary(model, batch)``,
    if given, is added to every step's loss (e.g. the contrastive loss of
    ``rechub_core.data.augment.SequenceContrast``) and reported per epoch as
    ``train_auxiliary_loss``; ``train_loss`` stays the objective's.
    """
    if needs_sampled_negatives(objective) and negatives is None:
        raise ValueError(f"objective {objective.name!r} needs a column of sampled negatives")
    correct = getattr(objective, "logq_correction", False)  # InBatch: a name; Listwise / Mixed: a flag
    if not (isinstance(objective, Mixed) and correct or isinstance(objective, InBatch) and correct == "counts"):
        item_logq = None
    elif item_logq is None:
        raise ValueError(f"objective {objective.name!r} with log-Q correction needs item_logq")
    if not (isinstance(objective, Listwise | Mixed) and correct):
        negative_logq = None
    elif negative_logq is None:
        raise ValueError(f"objective {objective.name!r} with log-Q correction needs negative_logq")
    streaming = None
    if isinstance(objective, InBatch) and objective.logq_correction == "streaming":
        streaming = StreamingFrequency(len(items))
    regularization = getattr(model, "regularization", None)
    optimizer = optimizer_for(model, config)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count, extra_total = 0.0, 0, 0.0
        drop_last = len(train) > config.batch_size  # a short last batch would have few in-batch negatives
        for batch in epoch_batches(train, config, generator=generator, epoch=epoch, desc=desc, drop_last=drop_last):
            pos_ids = batch["item_id"]
            pos_logq = item_logq[pos_ids] if item_logq is not None else None
            if streaming is not None:
                streaming.update(pos_ids)
                pos_logq = streaming.log_frequency(pos_ids)
            loss = two_tower_loss(
                model, batch, items, objective, pos_logq=pos_logq,
                negatives=negatives, negative_logq=negative_logq,
            )
            if regularization is not None:
                loss = loss + regularization()
            extra = auxiliary(model, batch) if auxiliary is not None else None
            optimizer.zero_grad(set_to_none=True)
            (loss if extra is None else loss + extra).backward()
            optimizer.step()
            total += loss.item() * len(pos_ids)
            count += len(pos_ids)
            if extra is not None:
                extra_total += extra.item() * len(pos_ids)
        record = {"epoch": epoch, "train_loss": total / count}
        if auxiliary is not None:
            record["train_auxiliary_loss"] = extra_total / count
        history.append(record)
    model.eval()
    return history
