"""Behaviour columns of ranking rows, derived when the rows are loaded.

``with_history_columns`` adds, for the short history ``hist``, each item's
category (``hist_category``, one gather), its time before the row's ``ts`` in
``time_bucket``s (``hist_dt``, from the items' times ``hist_ts``), and a
negative next item per position (``hist_neg``: another item, drawn uniformly
once from a seeded generator, with its ``hist_neg_category``), which DIEN's
auxiliary loss contrasts with the real next behaviour.

Long behaviour sequences are cut from one time-sorted log at batch time.
A ranking row needs the user's last ``max_len`` behaviours strictly before its
impression time. Stored per row, 1,000 behaviours of 360,000 impressions would
be gigabytes; instead the log is held once (``BehaviorLog``: flat item,
category and time tensors sorted by user, then time) and a batch's windows are
gathered from it: one ``searchsorted`` finds where each row's behaviours end,
one gather takes the ``max_len`` before that, padded on the left with 0.

Each window yields three padded ``(B, max_len)`` columns, as the schema's
``long`` group names them: the items, their categories, and the time between
each behaviour and the impression in log2-hour buckets (``time_bucket``).
"""

from __future__ import annotations

import torch

from rechub_core.data.tables import Batch, TensorTable

HIST, HIST_TS, HIST_CATEGORY, HIST_DT = "hist", "hist_ts", "hist_category", "hist_dt"
HIST_NEG, HIST_NEG_CATEGORY = "hist_neg", "hist_neg_category"
LONG_ITEM, LONG_CATEGORY, LONG_DT = "long_item", "long_category", "long_dt"
TIME_BUCKETS = 16  # ids 1..16; 0 is padding
_KEY_SHIFT = 40  # user id above, seconds since the log's start below (2^40 s is 34,000 years)


def time_bucket(seconds: torch.Tensor) -> torch.Tensor:
    """``1 + floor(log2(1 + hours))`` clipped to ``[1, TIME_BUCKETS]``: 1 is under an hour, 16 is ~3.7 years or more."""
    hours = seconds.clamp(min=0).to(torch.float64) / 3600.0
    return (1 + torch.floor(torch.log2(1 + hours))).clamp(max=TIME_BUCKETS).long()


def other_items(items: torch.Tensor, vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    """For every id of ``items`` (any shape; 0 = padding stays 0) a uniformly drawn different real id in ``[1, vocab_size)``."""
    real = vocab_size - 1  # ids 1..real
    if real < 2:
        raise ValueError(f"drawing a different item needs at least 2 items, the vocabulary has {real}")
    shift = torch.randint(1, real, items.shape, generator=generator)  # never a multiple of `real`
    other = 1 + (items - 1 + shift) % real
    return torch.where(items > 0, other, torch.zeros((), dtype=items.dtype))


def with_history_columns(table: TensorTable, item_category: torch.Tensor, vocab_size: int, seed: int) -> TensorTable:
    """``table`` (with ``hist``, ``hist_ts`` and ``ts``) plus ``hist_category`` (``item_category[hist]``;
    row = item id), ``hist_dt``, ``hist_neg`` and its items' ``hist_neg_category``; padding stays 0 in each."""
    hist = table[HIST]
    real = hist > 0
    dt = torch.where(real, time_bucket(table["ts"].unsqueeze(1) - table[HIST_TS]), torch.zeros((), dtype=torch.long))
    negative = other_items(hist, vocab_size, torch.Generator().manual_seed(seed))
    return TensorTable(
        {
            **table.columns,
            HIST_CATEGORY: item_category[hist],
            HIST_DT: dt,
            HIST_NEG: negative,
            HIST_NEG_CATEGORY: item_category[negative],
        }
    )


class BehaviorLog:
    """One long log of ``(user, item, category, ts)``, sorted by user then time.

    >>> log = BehaviorLog(torch.tensor([1, 1, 2]), torch.tensor([5, 6, 7]), torch.tensor([1, 2, 1]),
    ...                   torch.tensor([10, 20, 5]))
    >>> w = log.window(torch.tensor([1, 2]), torch.tensor([20, 100]), max_len=2)
    >>> w["long_item"].tolist(), w["long_category"].tolist()
    ([[0, 5], [0, 7]], [[0, 1], [0, 1]])
    """

    def __init__(self, user: torch.Tensor, item: torch.Tensor, category: torch.Tensor, ts: torch.Tensor):
        if not (len(user) == len(item) == len(category) == len(ts)):
            raise ValueError("behaviour log columns differ in length")
        self.start = int(ts.min()) if len(ts) else 0
        key = (user.long() << _KEY_SHIFT) + (ts.long() - self.start)
        if len(key) > 1 and bool((key[1:] < key[:-1]).any()):
            raise ValueError("behaviour log must be sorted by user, then time")
        self.key = key
        self.user = user.long()
        self.item = item.long()
        self.category = category.long()
        self.ts = ts.long()

    def __len__(self) -> int:
        return len(self.key)

    def window(self, user: torch.Tensor, ts: torch.Tensor, max_len: int) -> Batch:
        """Each row's last ``max_len`` behaviours strictly before ``ts``, left-padded: three ``(B, max_len)`` columns."""
        user, ts = user.long(), ts.long()
        if len(self.key) == 0:
            zeros = torch.zeros(len(user), max_len, dtype=torch.long)
            return {LONG_ITEM: zeros, LONG_CATEGORY: zeros.clone(), LONG_DT: zeros.clone()}
        offset = (ts - self.start).clamp(min=0)  # before the log starts: nothing precedes it
        end = torch.searchsorted(self.key, (user << _KEY_SHIFT) + offset)  # (B,): first behaviour at or after ts
        first = torch.searchsorted(self.key, user << _KEY_SHIFT)  # (B,): the user's first behaviour
        index = end.unsqueeze(1) - max_len + torch.arange(max_len)  # (B, L): oldest to newest
        valid = index >= first.unsqueeze(1)  # (B, L)
        safe = index.clamp(min=0, max=len(self.key) - 1)
        dt = time_bucket(ts.unsqueeze(1) - self.ts[safe])  # (B, L)
        zero = torch.zeros((), dtype=torch.long)
        return {
            LONG_ITEM: torch.where(valid, self.item[safe], zero),
            LONG_CATEGORY: torch.where(valid, self.category[safe], zero),
            LONG_DT: torch.where(valid, dt, zero),
        }


class WithBehaviors(TensorTable):
    """A ``TensorTable`` whose batches also carry each row's long behaviour window.

    The rows need ``user_id`` and ``ts``; ``take`` (and so ``batches``) adds
    the ``long_*`` columns. Reading one of them as a whole column
    (``table["long_item"]``) gathers every row's window at once.
    """

    def __init__(self, table: TensorTable, log: BehaviorLog, max_len: int):
        super().__init__(table.columns)
        missing = [c for c in ("user_id", "ts") if c not in table.columns]
        if missing:
            raise ValueError(f"rows need {missing} to cut their behaviour windows")
        self.log = log
        self.max_len = max_len

    def take(self, index: torch.Tensor | slice) -> Batch:
        batch = super().take(index)
        batch.update(self.log.window(batch["user_id"], batch["ts"], self.max_len))
        return batch

    def __getitem__(self, name: str) -> torch.Tensor:
        if name in (LONG_ITEM, LONG_CATEGORY, LONG_DT):
            return self.log.window(self.columns["user_id"], self.columns["ts"], self.max_len)[name]
        return super().__getitem__(name)

    def select(self, names: list[str] | tuple[str, ...]) -> TensorTable:
        return TensorTable({n: self[n] for n in names})
