"""``ingest.source: criteo`` on a tiny click log in the real format: tables, schema, split, preprocessing, bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from components.errors import DataError
from components.params import IngestParams
from components.sources import criteo
from pipelines.cli import main
from pipelines.runner import run_stage
from rechub_core.features import DenseFeature, Schema, SparseFeature
from tests.sources import criteo as tiny
from tests import sources

ROWS = 3000
FILE = "train.txt"
SPLITS = ("ranking_train", "ranking_valid", "ranking_test")


def setup(root: Path, rows: int = ROWS, **ingest) -> Path:
    """A project at ``root`` reading a tiny log in ``root/raw``; returns the log's path."""
    sources.project(root, tiny.write(root / "raw", rows=rows), **ingest)
    return root / "raw" / FILE


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("criteo")
    setup(root)
    run_stage("ingest", root=root)
    return root


def processed(root: Path) -> Path:
    return root / "data" / "processed"


def table(root: Path, name: str) -> pd.DataFrame:
    return pq.read_table(processed(root) / f"{name}.parquet").to_pandas()


def raw_log(root: Path) -> pd.DataFrame:
    """The raw file as text fields, with its 1-based line numbers."""
    frame = pd.read_csv(root / "raw" / FILE, sep="\t", header=None, names=criteo.FIELDS, dtype=str,
                        keep_default_na=False)
    frame.insert(0, "line", np.arange(1, len(frame) + 1))
    return frame


def all_rows(root: Path) -> pd.DataFrame:
    return pd.concat([table(root, s).assign(split=s.removeprefix("ranking_")) for s in SPLITS], ignore_index=True)


def test_writes_the_three_ranking_splits_and_nothing_else(project):
    out = processed(project)
    assert sorted(p.stem for p in out.glob("*.parquet")) == sorted(SPLITS)  # no users, items, recall or log
    assert sorted(p.stem for p in (out / "vocab").glob("*.parquet")) == sorted(criteo.CATEGORIES)
    meta = json.loads((out / "meta.json").read_text())
    # ts = line 1..3000; the time split's cuts at the 80 % and 90 % quantiles
    assert meta["rows"] == {"ranking_train": 2399, "ranking_valid": 300, "ranking_test": 301}
    assert meta["source"] == "criteo" and meta["provides"] == {"recall": False, "ranking": True}
    assert meta["skipped_rows"] == []


def test_schema_has_context_features_and_the_click_label(project):
    schema = Schema.from_json((processed(project) / "schema.json").read_text())
    assert list(schema.groups) == ["context"]
    context = schema.groups["context"]
    assert [f.name for f in context] == [*criteo.INTEGERS, *criteo.CATEGORIES]
    assert all(isinstance(f, DenseFeature) for f in context[:13])
    assert all(isinstance(f, SparseFeature) for f in context[13:])
    assert schema.labels == ("click",) and schema.values == () and not schema.funnel
    assert list(table(project, "ranking_test").columns) == [*criteo.INTEGERS, *criteo.CATEGORIES, "ts", "click"]


def test_rows_keep_their_line_as_time_and_split_in_file_order(project):
    raw = raw_log(project)
    for split, lines in (("ranking_train", (1, 2399)), ("ranking_valid", (2400, 2699)), ("ranking_test", (2700, 3000))):
        rows = table(project, split)
        assert rows["ts"].tolist() == list(range(lines[0], lines[1] + 1))  # the file's order is its time order
        assert (rows["click"].to_numpy() == raw["click"].astype(int).to_numpy()[rows["ts"] - 1]).all()


def test_integers_empty_and_negative_are_zero_then_log_and_standardised_on_training_rows(project):
    raw, rows = raw_log(project), all_rows(project).sort_values("ts")
    train = raw["line"] < 2400
    for col in criteo.INTEGERS:
        x = pd.to_numeric(raw[col].replace("", "0")).clip(lower=0).to_numpy()  # DLRM: empty → 0, negative → 0
        y = np.log1p(x)
        expected = (y - y[train].mean()) / (y[train].std() or 1.0)
        np.testing.assert_allclose(rows[col].to_numpy(), expected, atol=1e-4, err_msg=col)
    # the planted cases: an empty I1 reads as a count of 0, and I2's negatives as 0, not as the mean
    i1, i2 = rows["I1"].to_numpy(), rows["I2"].to_numpy()
    empty, zero = (raw["I1"] == "").to_numpy(), (raw["I1"] == "0").to_numpy()
    assert empty.sum() > 100 and zero.sum() > 100
    assert np.allclose(i1[empty], i1[zero][0]) and i1[zero][0] < -0.5
    negative = (pd.to_numeric(raw["I2"]) < 0).to_numpy()
    assert negative.sum() > 50 and np.allclose(i2[negative], i2[(raw["I2"] == "0").to_numpy()][0])


def test_rare_and_unseen_categories_share_the_oov_id_and_empty_is_zero(project):
    raw, rows = raw_log(project), all_rows(project).sort_values("ts")
    train = raw[raw["line"] < 2400]
    for col in ("C3", "C6"):  # C3: mostly rare values; C6: a quarter empty
        counts = train[train[col] != ""][col].value_counts()
        vocab = pq.read_table(processed(project) / "vocab" / f"{col}.parquet").to_pandas()
        assert set(vocab["raw"]) == set(counts[counts >= 2].index)  # min_count 2 over the training rows only
        assert vocab["id"].tolist() == list(range(2, len(vocab) + 2))  # 0 missing, 1 out of vocabulary
        ids = dict(zip(vocab["raw"], vocab["id"]))
        expected = raw[col].map(lambda v: 0 if v == "" else ids.get(v, 1)).to_numpy()
        assert (rows[col].to_numpy() == expected).all(), col
    c3 = rows["C3"].to_numpy()
    once = raw["C3"].isin(train["C3"].value_counts().loc[lambda c: c == 1].index).to_numpy()
    unseen = (~raw["C3"].isin(train["C3"])).to_numpy()
    assert once.sum() > 20 and (c3[once] == 1).all()  # seen once in training: folded into OOV
    assert unseen.sum() > 20 and (c3[unseen] == 1).all()  # first seen after the training rows: OOV
    assert (rows["C6"].to_numpy()[(raw["C6"] == "").to_numpy()] == 0).all()
    meta = json.loads((processed(project) / "meta.json").read_text())
    assert meta["out_of_vocabulary_id"] == {c: 1 for c in criteo.CATEGORIES}


def test_meta_counts_what_the_preparation_changed(project):
    raw = raw_log(project)
    notes = json.loads((processed(project) / "meta.json").read_text())["preparation"]["criteo"]
    assert notes["rows"] == ROWS and notes["clicks"] == int(raw["click"].astype(int).sum())
    assert notes["empty_integers_set_to_0"] == {c: int((raw[c] == "").sum()) for c in criteo.INTEGERS
                                                if (raw[c] == "").any()}
    assert notes["negative_integers_set_to_0"] == {"I2": int((pd.to_numeric(raw["I2"]) < 0).sum())}


# malformed rows, read by the reader alone (fast), then through the CLI


def read(root: Path, bad_rows: str = "fail"):
    params = yaml.safe_load((root / "params.yaml").read_text())["ingest"]
    params["bad_rows"] = bad_rows
    return criteo.read(duckdb.connect(), IngestParams.model_validate(params), root / "raw")


def replace_line(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text
    path.write_bytes(b"\n".join(lines))


def set_field(path: Path, line: int, index: int, value: bytes) -> None:
    fields = path.read_bytes().split(b"\n")[line - 1].split(b"\t")
    fields[index] = value
    replace_line(path, line, b"\t".join(fields))


def cut_fields(path: Path, line: int, keep: int) -> None:
    replace_line(path, line, b"\t".join(path.read_bytes().split(b"\n")[line - 1].split(b"\t")[:keep]))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: cut_fields(p, 5, 39), "train.txt: line 5: Expected Number of Columns: 40 Found: 39"),
    (lambda p: set_field(p, 5, 39, b"68fd1e64\tabcdef01"), "train.txt: line 5: Expected Number of Columns: 40 Found: 41"),
    (lambda p: set_field(p, 7, 3, b"abc"), "train.txt: column 'I3' line 7: 'abc' is not a valid bigint"),
    (lambda p: set_field(p, 7, 4, b"2.5"), "train.txt: column 'I4' line 7: '2.5' is not a valid bigint"),
    (lambda p: set_field(p, 9, 0, b"yes"), "train.txt: column 'click' line 9: 'yes' is not a valid integer"),
    (lambda p: set_field(p, 9, 0, b"2"), "train.txt: column 'click' line 9: '2' is not a label (0 or 1)"),
    (lambda p: set_field(p, 9, 0, b"-1"), "train.txt: column 'click' line 9: '-1' is not a label (0 or 1)"),
    (lambda p: set_field(p, 9, 0, b""), "train.txt: column 'click' line 9: empty value in a required column"),
    (lambda p: set_field(p, 11, 18, b"\xff\xfe01ab"), "train.txt: line 11: Invalid unicode"),
])
def test_a_malformed_line_names_file_and_line(tmp_path, edit, message):
    edit(setup(tmp_path, rows=200))
    with pytest.raises(DataError) as info:
        read(tmp_path)
    assert message in str(info.value)


def test_cli_fails_in_one_or_two_lines_and_writes_nothing(tmp_path, capsys):
    set_field(setup(tmp_path, rows=200), 9, 0, b"2")
    assert main(["ingest", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "train.txt: column 'click' line 9: '2' is not a label (0 or 1)" in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "data" / "processed").exists()


def test_a_missing_file_is_named(tmp_path, capsys):
    setup(tmp_path, rows=50).unlink()
    assert main(["ingest", "--root", str(tmp_path)]) == 1
    assert f"{tmp_path / 'raw' / FILE}: missing raw file" in capsys.readouterr().err


def test_skip_counts_malformed_rows_in_meta_and_keeps_every_other_line(tmp_path):
    path = setup(tmp_path, rows=600, bad_rows="skip")
    cut_fields(path, 5, 39)  # a field short
    set_field(path, 7, 39, b"68fd1e64\tabcdef01")  # a field too many
    set_field(path, 9, 3, b"abc")  # an integer that is not one
    set_field(path, 11, 0, b"2")  # a label that is not 0 or 1
    set_field(path, 13, 18, b"\xff\xfe01ab")  # not UTF-8
    set_field(path, 15, 0, b"")  # no label
    run_stage("ingest", root=tmp_path)
    meta = json.loads((processed(tmp_path) / "meta.json").read_text())
    assert meta["skipped_rows"] == [{
        "file": FILE, "table": "impressions", "rows": 6, "lines": [5, 7, 9, 11, 13, 15],
        "reasons": {"missing columns": 1, "too many columns": 1, "invalid encoding": 1, "I3: not a valid bigint": 1,
                    "click: empty": 1, "click: not a label (0 or 1)": 1},
    }]
    ts = sorted(all_rows(tmp_path)["ts"])
    assert ts == [line for line in range(1, 601) if line not in (5, 7, 9, 11, 13, 15)]  # the file's own lines
    assert meta["preparation"]["criteo"]["rows"] == 594


def test_skip_counts_a_line_short_of_many_fields_once(tmp_path):
    cut_fields(setup(tmp_path, rows=200), 5, 30)
    source = read(tmp_path, "skip")
    assert source.skipped[0]["rows"] == 1 and source.skipped[0]["lines"] == [5]
