"""``benchmarks.criteo_ingest``: its log is in the real format, and it ingests a small one end to end."""

from __future__ import annotations

import sys

import numpy as np

from benchmarks import criteo_ingest as bench
from components.sources.criteo import FIELDS


def test_hex8_writes_eight_lowercase_hex_digits():
    values = np.array([0, 1, 0xDEADBEEF, 2**32 - 1], dtype=np.uint32)
    assert [v.decode() for v in bench.hex8(values)] == ["00000000", "00000001", "deadbeef", "ffffffff"]


def test_the_log_has_forty_tab_separated_fields_with_empty_ones(tmp_path):
    path = tmp_path / "train.txt"
    bench.write_log(path, rows=5000, chunk_rows=1500, seed=0)
    lines = path.read_text().splitlines()
    assert len(lines) == 5000
    fields = [line.split("\t") for line in lines]
    assert {len(f) for f in fields} == {len(FIELDS)}
    labels = np.array([int(f[0]) for f in fields])
    assert set(labels) == {0, 1} and 0.1 < labels.mean() < 0.5
    empty_i12 = np.mean([f[12] == "" for f in fields])
    assert abs(empty_i12 - bench.EMPTY_INT[11]) < 0.03
    assert all(len(f[14]) == 8 for f in fields if f[14])  # C1: 8 hex digits


def test_main_ingests_under_the_memory_cap_and_prints_its_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["criteo_ingest", "--rows", "4000", "--memory-limit", "256MB",
                                      "--scratch", str(tmp_path)])
    assert bench.main() == 0
    out = capsys.readouterr().out
    for key in ("ingest wall", "peak RSS", "peak data dir", "ranking_test, ranking_train, ranking_valid"):
        assert key in out
    assert not (tmp_path / "raw").exists()  # the scratch directory is removed unless --keep
