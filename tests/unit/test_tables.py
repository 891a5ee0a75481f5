import numpy as np
import pyarrow as pa
import pytest
import torch

from rechub_core.data.tables import TensorTable, arrow_to_tensors, pad_lists


def test_pad_lists_left_pads_and_keeps_the_latest_items():
    col = pa.array([[1, 2, 3, 4], [], [5], [6, 7]])
    out = pad_lists(col, 3)
    np.testing.assert_array_equal(out, [[2, 3, 4], [0, 0, 0], [0, 0, 5], [0, 6, 7]])


def test_pad_lists_handles_sliced_and_chunked_columns():
    col = pa.chunked_array([pa.array([[9], [1, 2]]).slice(1), pa.array([[3, 4, 5]])])
    np.testing.assert_array_equal(pad_lists(col, 2), [[1, 2], [4, 5]])


def test_arrow_to_tensors_types():
    table = pa.table({"a": pa.array([1, 2], pa.int32()), "b": [0.5, 1.5], "s": [[1], [2, 3]], "name": ["x", "y"]})
    t = arrow_to_tensors(table, {"s": 2})
    assert t["a"].dtype == torch.int64 and t["b"].dtype == torch.float32
    assert t["s"].tolist() == [[0, 1], [2, 3]]
    assert "name" not in t.columns


def test_batches_cover_every_row_once_and_are_seeded():
    table = TensorTable({"x": torch.arange(10), "y": torch.arange(10) * 2})
    batches = list(table.batches(4, shuffle=True, generator=torch.Generator().manual_seed(3)))
    assert [len(b["x"]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b["x"] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(b["y"], b["x"] * 2) for b in batches)
    again = list(table.batches(4, shuffle=True, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(torch.cat([b["x"] for b in again]), seen)
    assert len(list(table.batches(4, drop_last=True))) == 2


def test_table_rejects_ragged_columns():
    with pytest.raises(ValueError, match="differ in length"):
        TensorTable({"a": torch.zeros(3), "b": torch.zeros(4)})
