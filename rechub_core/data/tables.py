"""Columnar tensor tables: Arrow in once, batches as index slices.

No per-row ``__getitem__`` and no per-row collate: a table is a dict of
contiguous tensors sharing their first dimension, and a batch is the same dict
indexed by a slice of a (seeded) permutation.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

Batch = dict[str, torch.Tensor]


class BatchSource:
    """What trainers read: ``len()`` rows, served as batches (in memory, or streamed from disk)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Yield batches; with ``shuffle`` a fresh order drawn from ``generator``; ``drop_last`` drops a short last one."""
        raise NotImplementedError

    def num_batches(self, batch_size: int, *, drop_last: bool = False) -> int:
        n = len(self)
        return n // batch_size if drop_last else -(-n // batch_size)


class TensorTable(BatchSource):
    """Equal-length tensors by column name."""

    def __init__(self, columns: Mapping[str, torch.Tensor]):
        lengths = {name: t.shape[0] for name, t in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns differ in length: {lengths}")
        self.columns: Batch = dict(columns)

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0] if self.columns else 0

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.columns[name]

    def take(self, index: torch.Tensor | slice) -> Batch:
        return {name: t[index] for name, t in self.columns.items()}

    def select(self, names: list[str] | tuple[str, ...]) -> TensorTable:
        return TensorTable({n: self.columns[n] for n in names})

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Yield batches; with ``shuffle`` a fresh permutation from ``generator``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            index = order[start : start + batch_size] if order is not None else slice(start, start + batch_size)
            yield self.take(index)

def pad_lists(column: pa.ListArray | pa.ChunkedArray, max_len: int) -> np.ndarray:
    """Left-pad a list<int> column into ``(N, max_len)`` int64, keeping the last items.

    Vectorised over the flat values: every value gets its target (row, col)
    from the list offsets; values beyond ``max_len`` from the end are dropped.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    offsets = column.offsets.to_numpy().astype(np.int64)
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    values_start = offsets[0]
    n = len(offsets) - 1
    out = np.zeros((n, max_len), dtype=np.int64)
    if len(values) == 0:
        return out
    lengths = np.diff(offsets)
    row = np.repeat(np.arange(n), lengths)
    # position counted from the end of its list: 1 for the last value
    from_end = np.repeat(offsets[1:], lengths) - np.arange(values_start, values_start + len(values))
    keep = from_end <= max_len
    out[row[keep], max_len - from_end[keep]] = values[keep]
    return out


def _tensor(array: np.ndarray) -> torch.Tensor:
    """Share the array's memory; Arrow buffers are read-only, and tables are never written in place."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def arrow_to_tensors(table: pa.Table, sequence_lengths: Mapping[str, int] | None = None) -> TensorTable:
    """Convert an Arrow table to tensors: ints → int64, floats → float32, lists → padded."""
    sequence_lengths = sequence_lengths or {}
    columns: Batch = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            if name not in sequence_lengths:
                raise ValueError(f"list column {name!r} needs a max length")
            columns[name] = torch.from_numpy(pad_lists(col, sequence_lengths[name]))
        elif pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
            columns[name] = _tensor(col.to_numpy().astype(np.int64, copy=False))
        elif pa.types.is_floating(col.type):
            columns[name] = _tensor(col.to_numpy().astype(np.float32, copy=False))
        # other types (strings, timestamps) stay out of the model's tensors
    return TensorTable(columns)


class ParquetTable(BatchSource):
    """A Parquet file too large for memory, with ``TensorTable``'s batch interface.

    Rows are read a window of ``window_row_groups`` row groups at a time and
    converted to tensors as in ``arrow_to_tensors``; memory holds one window
    (plus one partial batch carried into the next window). With ``shuffle``,
    the row groups come in a fresh seeded order each epoch and rows are
    permuted within each window, so a batch mixes rows of several row groups.
    """

    def __init__(
        self,
        path,
        columns: list[str] | None = None,
        sequence_lengths: Mapping[str, int] | None = None,
        *,
        window_row_groups: int = 4,
    ):
        if window_row_groups < 1:
            raise ValueError("window_row_groups must be at least 1")
        self.file = pq.ParquetFile(path)
        self.path = path
        self.column_names = columns
        self.sequence_lengths = sequence_lengths
        self.window_row_groups = window_row_groups

    def __len__(self) -> int:
        return self.file.metadata.num_rows

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        groups = self.file.num_row_groups
        order = torch.randperm(groups, generator=generator).tolist() if shuffle else list(range(groups))
        carry: Batch | None = None
        for start in range(0, groups, self.window_row_groups):
            arrow = self.file.read_row_groups(order[start : start + self.window_row_groups], columns=self.column_names)
            window = arrow_to_tensors(arrow, self.sequence_lengths).columns
            del arrow
            if carry is not None:
                window = {k: torch.cat([carry[k], v]) for k, v in window.items()}
            n = next(iter(window.values())).shape[0]
            if shuffle:
                perm = torch.randperm(n, generator=generator)
                window = {k: v[perm] for k, v in window.items()}
            full = n - n % batch_size
            for s in range(0, full, batch_size):
                yield {k: v[s : s + batch_size] for k, v in window.items()}
            carry = {k: v[full:] for k, v in window.items()} if full < n else None
        if carry is not None and not drop_last:
            yield carry
