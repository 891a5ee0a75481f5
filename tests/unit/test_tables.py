import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from rechub_core.data.tables import ParquetTable, TensorTable, arrow_to_tensors, pad_lists


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


@pytest.fixture
def parquet_file(tmp_path):
    n = 103
    table = pa.table({"x": np.arange(n), "y": np.arange(n) * 0.5, "s": [[i, i + 1] for i in range(n)]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=10)  # 11 row groups, the last one short
    return path


@pytest.mark.parametrize("window", [1, 3, 20])
def test_parquet_table_streams_every_row_once_in_exact_batches(parquet_file, window):
    table = ParquetTable(parquet_file, ["x", "y", "s"], {"s": 3}, window_row_groups=window)
    assert len(table) == 103 and table.num_batches(8) == 13
    batches = list(table.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(b["x"]) for b in batches] == [8] * 12 + [7]
    x = torch.cat([b["x"] for b in batches])
    assert sorted(x.tolist()) == list(range(103))
    for b in batches:  # columns stay row-aligned through the shuffle
        assert torch.equal(b["y"], b["x"].float() * 0.5)
        assert torch.equal(b["s"], torch.stack([torch.zeros_like(b["x"]), b["x"], b["x"] + 1], dim=1))
    again = torch.cat([b["x"] for b in table.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(x, again)
    assert len(list(table.batches(8, drop_last=True))) == 12


def test_parquet_table_shuffle_mixes_row_groups_and_epochs_differ(parquet_file):
    table = ParquetTable(parquet_file, ["x"], window_row_groups=4)
    g = torch.Generator().manual_seed(1)
    first = torch.cat([b["x"] for b in table.batches(10, shuffle=True, generator=g)])
    second = torch.cat([b["x"] for b in table.batches(10, shuffle=True, generator=g)])
    assert not torch.equal(first, second)
    assert len(set((first[:10] // 10).tolist())) > 1  # a batch draws from several row groups
    plain = torch.cat([b["x"] for b in table.batches(10)])
    assert plain.tolist() == list(range(103))
