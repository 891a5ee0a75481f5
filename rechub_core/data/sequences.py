"""Sequence-recall training data from an interaction log, vectorised.

The log is given as parallel arrays sorted by user, then time. Every function
here works on the flat arrays with index arithmetic (group starts, sliding
windows gathered at once); nothing loops over users or positions.

>>> import numpy as np
import torch
>>> user = np.array([1, 1, 1, 2, 2]); item = np.array([5, 6, 7, 8, 9])
>>> ex = next_item_examples(user, item, max_len=2)
>>> ex["hist"].tolist(), ex["item_id"].tolist()
([[0, 5], [5, 6], [0, 8]], [6, 7, 9])
"""

from __future__ import annotations

import numpy as np
import torch


def _check_sorted(user: np.ndarray, item: np.ndarray) -> None:
    if user.shape != item.shape or user.ndim != 1:
        raise ValueError(f"user and item must be equal-length 1-d arrays, got {user.shape} and {item.shape}")
    if len(user) > 1 and (np.diff(user) < 0).any():
        raise ValueError("the log must be sorted by user (then time)")


def group_starts(user: np.ndarray) -> np.ndarray:
    """For each row, the index of its user's first row."""
    first = np.r_[True, user[1:] != user[:-1]] if len(user) else np.zeros(0, bool)
    return np.maximum.accumulate(np.where(first, np.arange(len(user)), 0))


def last_of_user(user: np.ndarray) -> np.ndarray:
    """Boolean mask of each user's last row."""
    return np.r_[user[1:] != user[:-1], True] if len(user) else np.zeros(0, bool)


def windows(item: np.ndarray, ends: np.ndarray, starts: np.ndarray, max_len: int) -> np.ndarray:
    """Rows ``item[max(start, end - max_len):end]``, left-padded with 0 to ``(len(ends), max_len)``.

    One gather from a copy of ``item`` with ``max_len`` zeros before each
    user's run, so a window never reaches into the previous user's items.
    """
    if len(ends) == 0:
        return np.zeros((0, max_len), dtype=item.dtype)
    run_starts = np.unique(starts)
    users_before = np.searchsorted(run_starts, starts, side="right")  # 1-based index of each row's run
    shift = np.searchsorted(run_starts, np.arange(len(item)), side="right") * max_len  # zeros inserted before a row
    padded = np.zeros(len(item) + len(run_starts) * max_len, dtype=item.dtype)
    padded[np.arange(len(item)) + shift] = item
    view = torch.from_numpy(padded).unfold(0, max_len, 1)  # (P - L + 1, L), no copy
    first = torch.from_numpy(ends + users_before * max_len - max_len)  # (M,) each window's first position
    return view.index_select(0, first).numpy()  # (M, L); torch's gather is ~3x numpy's fancy indexing here


def next_item_examples(user: np.ndarray, item: np.ndarray, max_len: int, *, min_history: int = 1) -> dict[str, np.ndarray]:
    """One example per event with at least ``min_history`` earlier events of its user.

    Returns ``user_id (M,)``, ``hist (M, max_len)`` (the previous items, most
    recent last, left-padded) and the target ``item_id (M,)``.
    """
    _check_sorted(user, item)
    starts = group_starts(user)
    rows = np.flatnonzero(np.arange(len(user)) - starts >= min_history)
    return {"user_id": user[rows], "hist": windows(item, rows, starts[rows], max_len), "item_id": item[rows]}


def user_sequences(user: np.ndarray, item: np.ndarray, max_len: int) -> dict[str, np.ndarray]:
    """Each user's last ``max_len`` items, left-padded: ``user_id (U,)``, ``seq (U, max_len)``."""
    _check_sorted(user, item)
    starts = group_starts(user)
    last = np.flatnonzero(last_of_user(user))
    return {"user_id": user[last], "seq": windows(item, last + 1, starts[last], max_len)}


def leave_last_out(user: np.ndarray) -> np.ndarray:
    """Mask of training rows: all but each user's last event (users with one event keep it)."""
    starts = group_starts(user)
    last = last_of_user(user)
    return ~last | (np.arange(len(user)) == starts)
