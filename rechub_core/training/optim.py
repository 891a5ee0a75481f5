"""Optimizers for recommender models: fused Adam for dense weights, row-sparse Adam for embedding tables.

A batch touches a few thousand rows of tables that hold hundreds of
thousands. A dense gradient for such a table costs a full-table zero, a
scatter and a full-table Adam step on every batch; a sparse gradient costs
only the touched rows. ``sparse_embeddings`` switches a model's
``nn.Embedding`` tables to sparse gradients for the duration of training, and
``RowSparseAdam`` updates just those rows ("lazy" Adam: a row's moments move
only when the row is used, the standard choice for embedding tables).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def _distinct_rows(index: torch.Tensor, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of ``index`` (ascending) and each entry's position among them.

    Marking rows in a table-sized mask is linear and beats sorting while the
    table is not much larger than the batch's lookups; past that, sort.
    """
    if num_rows > 16 * len(index):
        return torch.unique(index, return_inverse=True)
    mark = torch.zeros(num_rows, dtype=torch.bool)
    mark[index] = True
    slot = mark.cumsum(0) - 1  # (num_rows,): position of each marked row among the marked ones
    return mark.nonzero().squeeze(1), slot[index]


class RowSparseAdam(torch.optim.Optimizer):
    """Adam over the rows present in a sparse gradient; dense gradients get a plain Adam step.

    ``weight_decay`` is L2 on the rows updated (added to their gradient), as Adam's own.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid RowSparseAdam settings: lr={lr}, betas={betas}, eps={eps}, wd={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                if not p.grad.is_sparse:  # a table used densely: plain Adam over every row
                    rows = torch.arange(len(p))
                    g = p.grad
                else:
                    index, values = p.grad._indices()[0], p.grad._values()  # (n,), (n, D), rows may repeat
                    rows, inverse = _distinct_rows(index, len(p))  # (r,), (n,)
                    g = torch.zeros(len(rows), *values.shape[1:], dtype=values.dtype).index_add_(0, inverse, values)
                param = p.index_select(0, rows)  # (r, D)
                if group["weight_decay"]:
                    g = g + group["weight_decay"] * param
                m = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(g, alpha=1 - beta1)
                v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, m)
                state["exp_avg_sq"].index_copy_(0, rows, v)
                denom = (v / (1 - beta2**t)).sqrt_().add_(group["eps"])
                p.index_copy_(0, rows, param.addcdiv_(m, denom, value=-group["lr"] / (1 - beta1**t)))
        return None


class Optimizers:
    """Several optimizers stepped as one (``zero_grad`` / ``step``)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = list(optimizers)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()


def embedding_tables(model: nn.Module) -> list[nn.Embedding]:
    return [m for m in model.modules() if isinstance(m, nn.Embedding)]


@contextmanager
def sparse_embeddings(model: nn.Module) -> Iterator[None]:
    """Give the model's ``nn.Embedding`` tables sparse gradients inside the block, as they were after it.

    Even a small table gains: for DeepFM's 1-d first-order table (340k rows,
    106k lookups a batch) torch's dense embedding backward on CPU took 7 ms a
    step, more than its sparse gradient and row-sparse step together.
    """
    tables = embedding_tables(model)
    before = [t.sparse for t in tables]
    for t in tables:
        t.sparse = True
    try:
        yield
    finally:
        for t, was in zip(tables, before):
            t.sparse = was


def trains_with_sparse_embeddings(fit: Callable) -> Callable:
    """Decorate a ``fit(model, ...)`` so the model's tables have sparse gradients while it runs."""

    @functools.wraps(fit)
    def wrapper(model: nn.Module, *args, **kwargs):
        with sparse_embeddings(model):
            return fit(model, *args, **kwargs)

    return wrapper


def adam_for(model: nn.Module, learning_rate: float, weight_decay: float) -> Optimizers:
    """Row-sparse Adam for tables with sparse gradients, fused Adam for everything else.

    Use inside ``sparse_embeddings``, which gives the tables sparse gradients.
    """
    table_weights = {id(t.weight) for t in embedding_tables(model) if t.sparse}
    params = [p for p in model.parameters() if p.requires_grad]
    sparse = [p for p in params if id(p) in table_weights]
    dense = [p for p in params if id(p) not in table_weights]
    optimizers = []
    if sparse:
        optimizers.append(RowSparseAdam(sparse, lr=learning_rate, weight_decay=weight_decay))
    if dense:
        optimizers.append(torch.optim.Adam(dense, lr=learning_rate, weight_decay=weight_decay, fused=True))
    return Optimizers(*optimizers)
