"""``source: generic``: a CSV / Parquet event log with its column roles in params, through ingest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.cli import main
from pipelines.runner import run_stage
from rechub_core.features import Schema
from tests.sources.generic import COLUMNS, write
from tests import sources

N_ROWS = 3049  # rows of the tiny log (seed 0)


def project(root: Path, overrides: dict, **ingest) -> Path:
    """``root/params.yaml`` reading the log ``overrides`` describe, with more ``ingest`` keys."""
    return sources.project(root, overrides, **ingest)  # a partial generic section updates the writer's


def ingest(root: Path, kind: str = "csv", time: str = "epoch", **more) -> Path:
    overrides = write(root / "raw", kind, time)
    project(root, overrides, **more)
    run_stage("ingest", root=root)
    return root


def read(root: Path, name: str) -> pd.DataFrame:
    return pq.read_table(root / "data" / "processed" / f"{name}.parquet").to_pandas()


def vocab(root: Path, name: str) -> pd.Series:
    """id → raw value of a vocabulary."""
    return read(root, f"vocab/{name}").set_index("id")["raw"]


def meta(root: Path) -> dict:
    return json.loads((root / "data" / "processed" / "meta.json").read_text())


def log(root: Path) -> pd.DataFrame:
    """The raw CSV as written, with each row's 1-based file ``line``."""
    frame = pd.read_csv(root / "raw" / "events.csv", dtype={"visitor": str})
    frame["line"] = np.arange(2, len(frame) + 2)
    return frame


def ranking(root: Path) -> pd.DataFrame:
    return pd.concat([read(root, f"ranking_{s}") for s in ("train", "valid", "test")], ignore_index=True)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory) -> Path:
    return ingest(tmp_path_factory.mktemp("generic"))


@pytest.fixture(scope="module")
def csv_overrides(csv_run) -> dict:
    """The ingest overrides reading ``csv_run``'s raw log (which no test edits)."""
    return yaml.safe_load((csv_run / "params.yaml").read_text())["ingest"]


def test_writes_every_table_with_the_rows_of_the_log(csv_run):
    raw = log(csv_run)
    assert len(raw) == N_ROWS
    clicks = raw[raw["click"] == 1]
    assert len(read(csv_run, "users")) == raw["visitor"].nunique() == 150
    assert len(read(csv_run, "items")) == raw["sku"].nunique()
    # interactions: positive → recall's rows are the clicks; leave-one-out: one test row per user with two
    train, test = read(csv_run, "recall_train"), read(csv_run, "recall_test")
    assert len(train) + len(test) == len(clicks) == len(read(csv_run, "behaviors"))
    assert len(test) == (clicks.groupby("visitor").size() >= 2).sum()
    # the ranking rows are every row, split by time 80 / 10 / 10
    tr, va, te = (read(csv_run, f"ranking_{s}") for s in ("train", "valid", "test"))
    assert len(tr) + len(va) + len(te) == N_ROWS
    assert tr["ts"].max() <= va["ts"].min() and va["ts"].max() <= te["ts"].min()
    assert abs(len(te) / N_ROWS - 0.1) < 0.01 and abs(len(va) / N_ROWS - 0.1) < 0.01
    prep = meta(csv_run)["preparation"]
    assert prep["rows"] == N_ROWS and prep["interactions"] == len(clicks) and prep["funnel_breaks"] == 0
    assert meta(csv_run)["skipped_rows"] == []


def test_schema_groups_labels_values_and_funnel(csv_run):
    schema = Schema.from_json((csv_run / "data/processed/schema.json").read_text())
    names = {g: {f.name for f in feats} for g, feats in schema.groups.items()}
    assert names["user"] == {"user_id", "country", "age", "hist"}
    assert names["item"] == {"item_id", "category", "brand", "price"}
    assert names["context"] == {"device", "position"}
    assert schema.labels == ("click", "purchase") and schema.values == ("dwell",)
    assert schema.funnel  # every purchase follows a click: checked on the rows
    assert {"behavior", "negatives", "long"} <= set(names)  # the item feature `category` feeds the behaviour models
    assert schema.feature("device").vocab_size == 3 + 1


def test_ids_keep_their_type(csv_run):
    users, items = vocab(csv_run, "user_id"), vocab(csv_run, "item_id")
    assert users.map(type).eq(str).all() and set(users) == set(log(csv_run)["visitor"])
    assert pd.api.types.is_integer_dtype(items) and set(items) == set(log(csv_run)["sku"])
    assert meta(csv_run)["preparation"]["id_types"] == {"user_id": "text", "item_id": "integer"}


def test_ranking_rows_carry_the_rows_labels_values_and_context(csv_run):
    raw = log(csv_run).set_index(["visitor", "event_time"])
    rows = ranking(csv_run)
    rows["visitor"] = vocab(csv_run, "user_id").loc[rows["user_id"]].to_numpy()
    got = rows.set_index(["visitor", "ts"]).sort_index()
    want = raw.loc[got.index]  # each (user, time) is one row of the log
    assert (vocab(csv_run, "item_id").loc[got["item_id"]].to_numpy() == want["sku"].to_numpy()).all()
    for col in ("click", "purchase"):
        assert (got[col].to_numpy() == want[col].to_numpy()).all()
    assert np.allclose(got["dwell"].to_numpy(), want["dwell"].to_numpy(), rtol=1e-6)
    assert (vocab(csv_run, "device").loc[got["device"]].to_numpy() == want["device"].to_numpy()).all()
    assert np.corrcoef(got["position"], want["position"])[0, 1] > 0.999  # standardised, not reordered


def _first_by_time(raw: pd.DataFrame, key: str, col: str) -> pd.Series:
    known = raw[raw[col].notna()].sort_values(["event_time", "line"])
    return known.groupby(key)[col].first()


def test_side_features_are_each_ids_first_known_value_in_time(csv_run):
    raw = log(csv_run)
    users = read(csv_run, "users").set_index("user_id")
    users.index = vocab(csv_run, "user_id").loc[users.index]
    country = vocab(csv_run, "country").loc[users["country"]].to_numpy()
    want = _first_by_time(raw, "visitor", "country").loc[users.index]
    assert (country == want.to_numpy()).all()
    # the rule matters on this log: neither the file's first row nor the last in time would give it
    assert (raw.groupby("visitor")["country"].first().loc[users.index] != want).any()
    assert (raw.sort_values("event_time").groupby("visitor")["country"].last().loc[users.index] != want).any()
    # a user whose first rows lack their age takes the first age logged
    age = _first_by_time(raw, "visitor", "age").loc[users.index]
    assert raw.sort_values("event_time").groupby("visitor")["age"].first().isna().sum() == 0  # first() skips NaN
    assert raw.sort_values("event_time").groupby("visitor").head(1)["age"].isna().any()
    assert np.allclose(users["age"], (age - age.mean()) / age.std(ddof=0), atol=1e-5)
    # prices fall by a fifth late in the log: an item's price is its first one
    items = read(csv_run, "items").set_index("item_id")
    price = _first_by_time(raw, "sku", "price").loc[vocab(csv_run, "item_id").loc[items.index]]
    assert np.allclose(items["price"], (price - price.mean()) / price.std(ddof=0), atol=1e-5)
    assert (raw.groupby("sku")["price"].nunique() > 1).any()


def test_parquet_timestamps_and_iso_text_give_the_same_tables(csv_run, tmp_path):
    parquet = ingest(tmp_path / "parquet", "parquet", "iso")
    iso = tmp_path / "iso"
    overrides = write(iso / "raw", "csv", "iso")
    path = iso / "raw" / "events.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    t = pd.to_datetime(frame["event_time"])
    shifted = (t + pd.Timedelta(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00")  # the same instant at UTC+2
    frame["event_time"] = np.where(np.arange(len(frame)) % 2 == 0, shifted, frame["event_time"])
    frame.to_csv(path, index=False)
    project(iso, overrides)
    run_stage("ingest", root=iso)
    for root in (parquet, iso):
        for name in ("users", "items", "recall_train", "recall_test", "ranking_train", "ranking_test", "vocab/item_id"):
            assert read(root, name).equals(read(csv_run, name)), (root.name, name)
    assert meta(parquet)["preparation"]["time"] == "timestamp, as epoch seconds"


def test_without_a_time_column_the_file_order_is_the_time(tmp_path):
    root = ingest(tmp_path, time="none")
    raw = pd.read_csv(root / "raw" / "events.csv", dtype={"visitor": str})
    raw["line"] = np.arange(2, len(raw) + 2)
    test = read(root, "recall_test")
    test["visitor"] = vocab(root, "user_id").loc[test["user_id"]].to_numpy()
    last = raw[raw["click"] == 1].groupby("visitor")["line"].max()
    assert (test.set_index("visitor")["ts"] == last.loc[test["visitor"]].to_numpy()).all()  # each user's last click
    assert meta(root)["preparation"]["time"] == "line"


def test_interactions_all_with_a_time_ratio_split(tmp_path):
    root = ingest(tmp_path, generic={"interactions": "all"}, recall_split={"name": "time_ratio", "test_fraction": 0.2})
    train, test = read(root, "recall_train"), read(root, "recall_test")
    assert len(read(root, "behaviors")) == N_ROWS  # every row, not only the clicks
    assert train["ts"].max() <= test["ts"].min()
    assert abs(len(train) / N_ROWS - 0.8) < 0.01 and len(train) + len(test) <= N_ROWS and len(test) > 0.15 * N_ROWS


def test_k_core_applies_to_the_interactions(tmp_path):
    root = ingest(tmp_path, k_core=6)
    events = pd.concat([read(root, "recall_train"), read(root, "recall_test")])
    assert events.groupby("user_id").size().min() >= 6 and events.groupby("item_id").size().min() >= 6
    assert meta(root)["preparation"]["k_core"]["removed_interactions"] > 0
    ranking = pd.concat([read(root, f"ranking_{split}") for split in ("train", "valid", "test")])
    k_core = meta(root)["preparation"]["k_core"]
    assert len(ranking) == N_ROWS - k_core["removed_impressions"]  # the rows of users and items outside the core go
    assert set(ranking["user_id"]) <= set(events["user_id"]) and set(ranking["item_id"]) <= set(events["item_id"])
    assert set(read(root, "items")["item_id"]) == set(events["item_id"])


def edit(path: Path, line: int, column: str, value: str) -> None:
    """Set one field of a 1-based line of the CSV log."""
    lines = path.read_bytes().split(b"\n")
    fields = lines[line - 1].split(b",")
    fields[COLUMNS.index(column)] = value.encode()
    lines[line - 1] = b",".join(fields)
    path.write_bytes(b"\n".join(lines))


def replace_line(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text
    path.write_bytes(b"\n".join(lines))


def test_a_purchase_without_a_click_is_no_funnel(tmp_path):
    overrides = write(tmp_path / "raw", "csv")
    path = tmp_path / "raw" / "events.csv"
    line = int(log(tmp_path).query("purchase == 1")["line"].iloc[0])
    edit(path, line, "click", "0")
    project(tmp_path, overrides)
    run_stage("ingest", root=tmp_path)
    assert not Schema.from_json((tmp_path / "data/processed/schema.json").read_text()).funnel
    assert meta(tmp_path)["preparation"]["funnel_breaks"] == 1


def test_one_text_value_makes_the_ids_text(tmp_path):
    """A CSV id column is integers only if every value is one: a stray code keeps the ids as they are written."""
    overrides = write(tmp_path / "raw", "csv")
    edit(tmp_path / "raw" / "events.csv", 10, "sku", "007")
    project(tmp_path, overrides)
    run_stage("ingest", root=tmp_path)
    items = vocab(tmp_path, "item_id")
    assert items.map(type).eq(str).all() and "007" in set(items) and "1000" in set(items)
    assert meta(tmp_path)["preparation"]["id_types"]["item_id"] == "text"


def _fails(root: Path, capsys, *expected: str) -> None:
    assert main(["ingest", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, err
    assert len(err.strip().splitlines()) <= 2
    assert not (root / "data" / "processed").exists()


@pytest.mark.parametrize(("generic", "expected"), [
    ({"labels": ["click", "cart"]}, "events.csv: missing column 'cart' (ingest.generic.labels)"),
    ({"item_features": {"category": "categorical", "colour": "categorical"}},
     "events.csv: missing column 'colour' (ingest.generic.item_features)"),
    ({"time": "when"}, "events.csv: missing column 'when' (ingest.generic.time)"),
    ({"context_features": {"device": "categorical", "price": "numeric"}},
     "column 'price' is named in ['ingest.generic.item_features', 'ingest.generic.context_features']"),
    ({"values": ["dwell", "click"]}, "column 'click' is named in ['ingest.generic.labels', 'ingest.generic.values']"),
    ({"user_features": {"visitor": "categorical"}},
     "column 'visitor' is named in ['ingest.generic.user', 'ingest.generic.user_features']"),
    ({"labels": [], "values": [], "context_features": {}, "interactions": "positive"},
     "ingest.generic.interactions: positive keeps the rows whose first label is 1"),
    ({"labels": [], "values": [], "interactions": "all"}, "ingest.generic.context_features: ['device', 'position']"),
    ({"file": "events.parquet"}, "events.parquet: missing raw file (ingest.generic.file"),
])
def test_params_that_do_not_fit_the_file_name_the_key(csv_overrides, tmp_path, capsys, generic, expected):
    project(tmp_path, csv_overrides, generic=generic)
    _fails(tmp_path, capsys, expected)


@pytest.mark.parametrize(("name", "expected"), [
    ("split", "takes the name of a column ingest makes"),
    ("hist", "takes the name of a column ingest makes"),
    ("TS", "takes the name of a column ingest makes"),  # DuckDB's names ignore case
    ("hist_category", "takes the name of a column ingest makes"),
    ("device type", "must be letters, digits and underscores"),
])
def test_a_feature_name_ingest_cannot_keep_is_refused(tmp_path, capsys, name, expected):
    overrides = write(tmp_path / "raw", "csv")
    path = tmp_path / "raw" / "events.csv"
    path.write_text(path.read_text().replace(",device,", f",{name},", 1))
    project(tmp_path, overrides, generic={"context_features": {name: "categorical", "position": "numeric"}})
    _fails(tmp_path, capsys, f"ingest.generic.context_features: column '{name}'", expected)


@pytest.mark.parametrize(("line", "column", "value", "expected"), [
    (5, "click", "2", "events.csv: column 'click' line 5: '2' is not 0 or 1 (ingest.generic.labels)"),
    (6, "click", "yes", "events.csv: column 'click' line 6: 'yes' is not a valid integer"),
    (7, "price", "cheap", "events.csv: column 'price' line 7: 'cheap' is not a valid double"),
    (8, "dwell", "inf", "events.csv: column 'dwell' line 8: 'inf' is not a finite number (ingest.generic.values)"),
    (9, "event_time", "soon", "events.csv: column 'event_time' line 9: 'soon' is not a valid bigint"),
    (10, "event_time", "1700000000.5", "events.csv: column 'event_time' line 10: '1700000000.5' is not a valid bigint"),
    (11, "visitor", "", "events.csv: column 'visitor' line 11: empty value in a required column"),
])
def test_a_malformed_value_names_file_column_and_line(tmp_path, capsys, line, column, value, expected):
    overrides = write(tmp_path / "raw", "csv")
    edit(tmp_path / "raw" / "events.csv", line, column, value)
    project(tmp_path, overrides)
    _fails(tmp_path, capsys, expected)


def test_a_line_with_too_few_fields_names_file_and_line(tmp_path, capsys):
    project(tmp_path, write(tmp_path / "raw", "csv"))  # a copy of its own: the tests below edit it
    replace_line(tmp_path / "raw" / "events.csv", 7, b"v0001,1000,1700000000")
    _fails(tmp_path, capsys, "events.csv: line 7: Expected Number of Columns: 13 Found: 3")


def test_a_line_that_is_not_utf8_names_file_and_line(tmp_path, capsys):
    project(tmp_path, write(tmp_path / "raw", "csv"))
    path = tmp_path / "raw" / "events.csv"
    fields = path.read_bytes().split(b"\n")[4].split(b",")
    fields[COLUMNS.index("country")] = b"\xff\xfe"
    replace_line(path, 5, b",".join(fields))
    _fails(tmp_path, capsys, "events.csv: line 5: Invalid unicode")


def test_skip_counts_malformed_rows_and_keeps_the_rest(tmp_path):
    overrides = write(tmp_path / "raw", "csv")
    path = tmp_path / "raw" / "events.csv"
    raw = log(tmp_path)
    # too few fields
    replace_line(path, 7, path.read_bytes().split(b"\n")[6].rsplit(b",", 1)[0])
    replace_line(path, 9, path.read_bytes().split(b"\n")[8] + b",1")  # too many
    fields = path.read_bytes().split(b"\n")[10].split(b",")
    fields[COLUMNS.index("brand")] = b"\xff"
    replace_line(path, 11, b",".join(fields))  # not UTF-8
    edit(path, 13, "event_time", "soon")
    edit(path, 15, "click", "2")  # not a binary label: the reader's own check
    edit(path, 17, "dwell", "nan")
    edit(path, 19, "sku", "")
    project(tmp_path, overrides, bad_rows="skip")
    run_stage("ingest", root=tmp_path)
    skipped = meta(tmp_path)["skipped_rows"]
    assert len(skipped) == 1 and skipped[0]["file"] == "events.csv" and skipped[0]["table"] == "events"
    assert skipped[0]["rows"] == 7 and skipped[0]["lines"] == [7, 9, 11, 13, 15, 17, 19]
    assert skipped[0]["reasons"] == {
        "missing columns": 1, "too many columns": 1, "invalid encoding": 1, "event_time: not a valid bigint": 1,
        "click: not 0 or 1": 1, "dwell: not a finite number": 1, "sku: empty": 1}
    assert len(ranking(tmp_path)) == N_ROWS - 7  # nothing else is dropped
    kept_clicks = raw[~raw["line"].isin([7, 9, 11, 13, 15, 17, 19]) & (raw["click"] == 1)]
    assert len(read(tmp_path, "recall_train")) + len(read(tmp_path, "recall_test")) == len(kept_clicks)
    assert meta(tmp_path)["preparation"]["rows"] == N_ROWS - 7
