"""``ingest.source: census`` on tiny Census-Income (KDD) files in the real format: MMoE's two labels,
the features left out, the given split, missing values, preprocessing and malformed rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from components.sources import census
from pipelines.cli import main
from pipelines.runner import run_stage
from rechub_core.features import DenseFeature, Schema, SparseFeature
from tests.sources import census as tiny
from tests import sources

TRAIN_ROWS, TEST_ROWS = 2000, 1000
SPLITS = ("train", "valid", "test")


def setup(root: Path, train_rows: int = TRAIN_ROWS, test_rows: int = TEST_ROWS, **ingest) -> dict[str, Path]:
    sources.project(root, tiny.write(root / "raw", train_rows=train_rows, test_rows=test_rows), **ingest)
    return {"train": root / "raw" / tiny.TRAIN, "test": root / "raw" / tiny.TEST}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("census")
    setup(root)
    run_stage("ingest", root=root)
    return root


def processed(root: Path) -> Path:
    return root / "data" / "processed"


def split(root: Path, name: str) -> pd.DataFrame:
    return pq.read_table(processed(root) / f"ranking_{name}.parquet").to_pandas()


def raw(path: Path) -> pd.DataFrame:
    """A raw file's fields as text, with its 1-based line numbers."""
    rows = [line.split(", ") for line in path.read_text().splitlines()]
    frame = pd.DataFrame(rows, columns=census.NAMES)
    frame.insert(0, "line", np.arange(1, len(frame) + 1))
    return frame


def vocab(root: Path, name: str) -> dict:
    table = pq.read_table(processed(root) / "vocab" / f"{name}.parquet").to_pandas()
    return dict(zip(table["id"], table["raw"]))


def test_the_test_file_splits_in_half_by_a_hash_of_the_line(project):
    rows = {name: split(project, name) for name in SPLITS}
    assert [len(rows[name]) for name in SPLITS] == [TRAIN_ROWS, TEST_ROWS // 2, TEST_ROWS // 2]
    by_hash = sorted(range(1, TEST_ROWS + 1), key=lambda line: hashlib.md5(str(line).encode()).hexdigest())
    valid_lines = sorted(rows["valid"]["ts"] - TRAIN_ROWS)
    assert valid_lines == sorted(by_hash[: TEST_ROWS // 2])
    assert list(rows["train"]["ts"]) == list(range(1, TRAIN_ROWS + 1))  # the training file, in its order
    assert rows["train"]["ts"].max() < rows["valid"]["ts"].min() and rows["valid"]["ts"].max() < rows["test"]["ts"].min()
    assert not (processed(project) / "recall_train.parquet").exists() and not (processed(project) / "users.parquet").exists()


def test_the_two_labels_of_mmoe_line_up_with_the_raw_rows(project):
    train = split(project, "train")
    text = raw(project / "raw" / tiny.TRAIN)
    assert (train["income"].to_numpy() == (text["income_50k"] == "50000+.").to_numpy()).all()
    assert (train["never_married"].to_numpy() == (text["marital_stat"] == "Never married").to_numpy()).all()
    assert 0 < train["income"].mean() < 0.5 and 0 < train["never_married"].mean() < 1
    test = split(project, "test")
    test_text = raw(project / "raw" / tiny.TEST).set_index("line").loc[test["ts"] - TRAIN_ROWS - TEST_ROWS]
    assert (test["income"].to_numpy() == (test_text["income_50k"] == "50000+.").to_numpy()).all()


def test_features_are_every_field_but_the_labels_sources_and_the_weight(project):
    schema = Schema.from_json((processed(project) / "schema.json").read_text())
    assert set(schema.groups) == {"context"} and schema.labels == ("income", "never_married") and not schema.funnel
    features = {f.name: f for f in schema.groups["context"]}
    assert not {"education", "marital_stat", "instance_weight", "income_50k"} & set(features)
    dense = {"age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp", "weeks_worked"}
    assert {n for n, f in features.items() if isinstance(f, DenseFeature)} == dense
    assert all(isinstance(f, SparseFeature) for n, f in features.items() if n not in dense)
    assert len(features) == 42 - 4


def test_money_is_log_then_standardised_and_question_marks_are_missing(project):
    train, text = split(project, "train"), raw(project / "raw" / tiny.TRAIN)
    gains = np.log1p(text["capital_gains"].astype(float).to_numpy())
    np.testing.assert_allclose(train["capital_gains"], (gains - gains.mean()) / gains.std(), atol=1e-4)
    age = text["age"].astype(float).to_numpy()
    np.testing.assert_allclose(train["age"], (age - age.mean()) / age.std(), atol=1e-4)
    missing = (text["mig_chg_msa"] == "?").to_numpy()
    assert missing.any() and (train["mig_chg_msa"].to_numpy()[missing] == 0).all()
    assert (train["mig_chg_msa"].to_numpy()[~missing] > 0).all() and "?" not in vocab(project, "mig_chg_msa").values()


def test_meta_and_validation_report_the_preparation(project):
    meta = json.loads((processed(project) / "meta.json").read_text())
    notes = meta["preparation"]["census"]
    assert notes["rows"] == {"train": TRAIN_ROWS, "valid": TEST_ROWS // 2, "test": TEST_ROWS // 2}
    assert notes["missing_values"]["mig_chg_msa"] > 0 and "age" not in notes["missing_values"]
    assert set(notes["not_features"]) == {"education", "marital_stat", "instance_weight", "income_50k"}
    run_stage("validate", root=project)
    assert json.loads((project / "reports" / "validation.json").read_text())["success"]


def _edit(path: Path, line: int, field: str, value: str) -> None:
    lines = path.read_text().split("\n")
    fields = lines[line - 1].split(", ")
    fields[census.NAMES.index(field)] = value
    lines[line - 1] = ", ".join(fields)
    path.write_text("\n".join(lines))


def _drop_field(path: Path, line: int) -> None:
    lines = path.read_text().split("\n")
    lines[line - 1] = ", ".join(lines[line - 1].split(", ")[:-1])
    path.write_text("\n".join(lines))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: _drop_field(f["train"], 4), "census-income.data: line 4: Expected Number of Columns: 42 Found: 41"),
    (lambda f: _edit(f["test"], 6, "age", "old"), "census-income.test: column 'age' line 6: 'old' is not a valid double"),
    (lambda f: _edit(f["train"], 8, "income_50k", "50000"),
     "census-income.data: column 'income_50k' line 8: '50000' is not an income class"),
    (lambda f: _edit(f["test"], 3, "marital_stat", ""),
     "census-income.test: column 'marital_stat' line 3: empty value in a required column"),
])
def test_a_malformed_line_names_file_and_line(tmp_path, capsys, edit, message):
    edit(setup(tmp_path, train_rows=100, test_rows=40))
    assert main(["ingest", "--root", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
    assert not processed(tmp_path).exists()


def test_skip_counts_malformed_rows_of_each_file(tmp_path):
    files = setup(tmp_path, train_rows=100, test_rows=40, bad_rows="skip")
    _drop_field(files["train"], 4)
    _edit(files["train"], 8, "income_50k", "50000")
    _edit(files["test"], 6, "age", "old")
    run_stage("ingest", root=tmp_path)
    meta = json.loads((processed(tmp_path) / "meta.json").read_text())
    assert [(s["file"], s["rows"], s["lines"]) for s in meta["skipped_rows"]] == [
        (tiny.TRAIN, 2, [4, 8]), (tiny.TEST, 1, [6])]
    assert meta["preparation"]["census"]["rows"] == {"train": 98, "valid": 19, "test": 20}
