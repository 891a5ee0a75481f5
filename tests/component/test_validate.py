"""validate: the schema-derived GX suite passes on freshly ingested tiny data and names each corruption."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from components.errors import DataError, ValidationFailed
from components.validate import TABLES, run
from pipelines.cli import main
from pipelines.runner import run_stage
from pipelines.stages import PROCESSED, VALIDATION_REPORT
from rechub_core.features import Schema
from tests.conftest import tiny_params_dict


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root holding tiny params and the processed data a real ingest wrote (once per module)."""
    root = tmp_path_factory.mktemp("ingested")
    params = tiny_params_dict()
    params["ingest"]["raw_dir"] = "data/raw"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_stage("ingest", params_path="params.yaml", root=root)
    return root


@pytest.fixture
def root(ingested: Path, tmp_path: Path) -> Path:
    """This test's own copy of the ingested project, free to corrupt."""
    shutil.copy(ingested / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ingested / PROCESSED, tmp_path / PROCESSED)
    return tmp_path


def validate(root: Path) -> dict:
    return run(processed=root / PROCESSED, report=root / VALIDATION_REPORT)


def read(root: Path, table: str) -> pd.DataFrame:
    return pq.read_table(root / PROCESSED / f"{table}.parquet").to_pandas()


def write(root: Path, table: str, df: pd.DataFrame) -> None:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), root / PROCESSED / f"{table}.parquet")


def schema(root: Path) -> Schema:
    return Schema.from_json((root / PROCESSED / "schema.json").read_text())


def failures(report: dict) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(e["table"], e["expectation"], tuple(e["columns"])) for e in report["expectations"] if not e["success"]}


# --- corruptions: each edits one table and returns the unexpected value GX should report ---


def oov_item_id(root: Path):
    df = read(root, "recall_test")
    bad = schema(root).feature("item_id").vocab_size  # one past the last id
    df.loc[0, "item_id"] = bad
    write(root, "recall_test", df)
    return bad


def oov_hist_element(root: Path):
    df = read(root, "recall_train")
    row = int((df["hist"].map(len) > 0).idxmax())
    bad = schema(root).feature("hist").vocab_size
    hist = list(df.at[row, "hist"])
    hist[-1] = bad  # same length, one id out of range
    df.at[row, "hist"] = hist
    write(root, "recall_train", df)
    return bad


def null_feature(root: Path):
    df = read(root, "ranking_train")
    df["brand"] = df["brand"].astype("Int64")
    df.loc[3, "brand"] = pd.NA
    write(root, "ranking_train", df)
    return None


def label_two(root: Path):
    df = read(root, "ranking_valid")
    df.loc[0, "click"] = 2
    write(root, "ranking_valid", df)
    return 2


def conversion_without_click(root: Path):
    df = read(root, "ranking_test")
    row = df.index[(df["click"] == 0)][0]
    df.loc[row, "conversion"] = 1
    write(root, "ranking_test", df)
    return [0, 1]


def recall_test_before_train(root: Path):
    train, test = read(root, "recall_train"), read(root, "recall_test")
    user = test.loc[0, "user_id"]
    last = int(train.loc[train["user_id"] == user, "ts"].max())
    assert last - 1 > train["ts"].min()  # later than other training rows: only the per-user check catches it
    test.loc[0, "ts"] = last - 1
    write(root, "recall_test", test)
    return [last - 1, last]


def ranking_test_before_train(root: Path):
    train = read(root, "ranking_train")["ts"]
    df = read(root, "ranking_test")
    df.loc[0, "ts"] = int(train.min()) - 1
    write(root, "ranking_test", df)
    return [int(train.min()) - 1, int(train.max())]


def behaviors_out_of_order(root: Path):
    df = read(root, "behaviors")
    df.loc[0, "ts"] = df.loc[1, "ts"] + 1  # the user's first row is now later than their second
    write(root, "behaviors", df)
    return 1  # rows out of order, for that user


def oov_behavior_item(root: Path):
    df = read(root, "behaviors")
    bad = schema(root).feature("item_id").vocab_size
    df.loc[len(df) // 2, "item_id"] = bad
    write(root, "behaviors", df)
    return bad


def missing_column(root: Path):
    write(root, "items", read(root, "items").drop(columns=["category"]))
    return None


PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
BETWEEN = "expect_column_values_to_be_between"
CASES: list[tuple[Callable, set, str]] = [
    (oov_item_id, {("recall_test", BETWEEN, ("item_id",))}, f"recall_test.item_id: {BETWEEN} failed (1 unexpected"),
    (
        oov_hist_element,
        {("recall_train.hist", BETWEEN, ("element",))},
        f"recall_train.hist.element: {BETWEEN} failed (1 unexpected",
    ),
    (
        null_feature,
        {("ranking_train", "expect_column_values_to_not_be_null", ("brand",))},
        "ranking_train.brand: expect_column_values_to_not_be_null failed (1 unexpected",
    ),
    (
        label_two,
        {("ranking_valid", "expect_column_values_to_be_in_set", ("click",))},
        "ranking_valid.click: expect_column_values_to_be_in_set failed (1 unexpected, e.g. [2])",
    ),
    (
        conversion_without_click,
        {("ranking_test", PAIR, ("click", "conversion"))},
        f"ranking_test.(click, conversion): {PAIR} failed (1 unexpected, e.g. [[0, 1]])",
    ),
    (
        recall_test_before_train,
        {("recall_test.after_train", PAIR, ("ts", "train_max_ts"))},
        f"recall_test.after_train.(ts, train_max_ts): {PAIR} failed (1 unexpected",
    ),
    (
        ranking_test_before_train,
        {
            ("ranking_test.after_train", PAIR, ("ts", "train_max_ts")),
            ("ranking_test.after_valid", PAIR, ("ts", "valid_max_ts")),
        },
        f"ranking_test.after_train.(ts, train_max_ts): {PAIR} failed (1 unexpected",
    ),
    (
        behaviors_out_of_order,
        {("behaviors.per_user", BETWEEN, ("out_of_order_sum",))},
        f"behaviors.per_user.out_of_order_sum: {BETWEEN} failed (1 unexpected",
    ),
    (
        oov_behavior_item,
        {("behaviors.per_user", BETWEEN, ("item_id_max",))},
        f"behaviors.per_user.item_id_max: {BETWEEN} failed (1 unexpected",
    ),
    (
        missing_column,
        {("items", "expect_column_to_exist", ("category",))},
        "items.category: expect_column_to_exist failed (column missing)",
    ),
]


def test_passes_on_ingested_data_and_writes_report(root: Path):
    out = validate(root)
    assert out["success"] is True
    assert out["failed"] == 0 and out["evaluated"] == len(out["expectations"]) > 100
    report = json.loads((root / VALIDATION_REPORT).read_text())
    assert report == out
    assert sorted(p.name for p in (root / VALIDATION_REPORT).parent.iterdir()) == ["validation.json"]  # no temp left
    batches = {t + ".per_user" if TABLES[t].per_user else t for t in TABLES}  # a long log: one row per user
    assert batches | {"recall_train.hist", "recall_test.after_train", "ranking_test.after_valid"} <= set(report["rows"])
    checked = {(e["table"], e["expectation"], tuple(e["columns"])) for e in report["expectations"]}
    # bounds come from the schema: every sparse feature of every ranking table, the labels, the funnel
    for feat in schema(root).features("user", "item"):
        assert ("ranking_train", "expect_column_to_exist", (feat.name,)) in checked
    assert ("ranking_valid", "expect_column_values_to_be_in_set", ("conversion",)) in checked
    assert ("ranking_valid", PAIR, ("click", "conversion")) in checked
    assert all((t, "expect_table_row_count_to_be_between", ()) in checked for t in batches)


@pytest.mark.parametrize(("corrupt", "expected", "line"), CASES, ids=[c[0].__name__ for c in CASES])
def test_fails_and_names_the_expectation(root: Path, corrupt: Callable, expected: set, line: str):
    bad = corrupt(root)
    with pytest.raises(ValidationFailed) as info:
        validate(root)
    message = str(info.value)
    assert line in message
    assert str(root / VALIDATION_REPORT) in message
    report = json.loads((root / VALIDATION_REPORT).read_text())  # written before raising
    assert report["success"] is False
    assert failures(report) == expected  # exactly the corrupted check fails, nothing else
    assert report["failed"] == len(expected)
    entry = next(e for e in report["expectations"] if not e["success"])
    if entry["expectation"] != "expect_column_to_exist":
        assert entry["unexpected_count"] == 1
        assert bad in entry["unexpected_sample"]


def test_bounds_follow_the_schema(root: Path):
    """Shrinking a vocabulary in schema.json alone makes in-range data fail: nothing is hard-coded."""
    path = root / PROCESSED / "schema.json"
    raw = json.loads(path.read_text())
    for feat in raw["groups"]["item"]:
        if feat["name"] == "brand":
            feat["vocab_size"] = 2
    path.write_text(json.dumps(raw))
    with pytest.raises(ValidationFailed, match=r"items\.brand: expect_column_values_to_be_between failed"):
        validate(root)
    failed = failures(json.loads((root / VALIDATION_REPORT).read_text()))
    assert {t for t, _, cols in failed} == {"items", "ranking_train", "ranking_valid", "ranking_test"}
    assert {cols for _, _, cols in failed} == {("brand",)}


def test_message_lists_at_most_ten_failures(root: Path):
    items = read(root, "items")
    write(root, "items", items[["item_id"]])  # four columns missing
    users = read(root, "users")
    write(root, "users", users[["user_id"]].assign(user_id=-1))  # three missing, ids out of range
    ranking = read(root, "ranking_train")
    write(root, "ranking_train", ranking.drop(columns=["click", "conversion", "ts", "price"]))
    with pytest.raises(ValidationFailed) as info:
        validate(root)
    lines = str(info.value).splitlines()
    n = json.loads((root / VALIDATION_REPORT).read_text())["failed"]
    assert n > 10
    assert lines[0].startswith(f"{n} of ")
    assert len(lines) == 1 + 10 + 1 and lines[-1] == f"... and {n - 10} more"


def test_missing_schema_raises_data_error(root: Path):
    (root / PROCESSED / "schema.json").unlink()
    with pytest.raises(DataError, match="schema.json"):
        validate(root)


def test_missing_table_raises_data_error(root: Path):
    (root / PROCESSED / "ranking_valid.parquet").unlink()
    with pytest.raises(DataError, match="ranking_valid.parquet"):
        validate(root)


def test_cli_exits_nonzero_with_a_short_error(root: Path, capsys: pytest.CaptureFixture):
    oov_item_id(root)
    assert main(["validate", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("rechub validate: error: 1 of ")
    assert f"recall_test.item_id: {BETWEEN} failed" in captured.err
    assert len(captured.err.strip().splitlines()) == 2
    assert json.loads((root / VALIDATION_REPORT).read_text())["success"] is False
