"""Ingest on tiny generated data: what it writes, and how it fails on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from components.errors import DataError
from pipelines.cli import main
from pipelines.runner import run_stage
from rechub_core.features import Schema
from tests.conftest import tiny_params_dict


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ingest")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    run_stage("ingest", root=root)
    return root


def files_params(root: Path, raw: Path) -> Path:
    params = tiny_params_dict(ingest={"source": "files", "raw_dir": str(raw)})
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def raw_copy(ingested: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A project root reading a private copy of the generated raw files."""
    raw = tmp_path / "raw"
    shutil.copytree(ingested / "data" / "raw", raw)
    files_params(tmp_path, raw)
    return tmp_path, raw


def read(root: Path, name: str):
    return pq.read_table(root / "data" / "processed" / f"{name}.parquet").to_pandas()


def test_writes_every_table_schema_and_vocabularies(ingested):
    processed = ingested / "data" / "processed"
    for name in ["users", "items", "recall_train", "recall_test", "ranking_train", "ranking_valid", "ranking_test"]:
        assert (processed / f"{name}.parquet").exists(), name
    schema = Schema.from_json((processed / "schema.json").read_text())
    items = pq.read_table(processed / "vocab" / "item_id.parquet").to_pandas()
    assert items["id"].tolist() == list(range(1, len(items) + 1))  # contiguous, 0 reserved
    assert schema.feature("item_id").vocab_size == len(items) + 1
    assert not list(processed.parent.glob(".*tmp"))  # no temp leftovers


def test_raw_dir_holds_the_logs_only(ingested):
    """The generator's counterfactual labels are no log a production system has: they stay out of raw_dir."""
    names = {p.stem for p in (ingested / "data" / "raw").iterdir() if not p.name.startswith(".")}
    assert names == {"users", "items", "interactions", "behaviors", "impressions"}


def test_conversion_if_clicked_lines_up_with_the_ranking_rows(ingested):
    from benchmarks.multi_task_models import conversion_if_clicked

    for split in ("train", "test"):
        rows = read(ingested, f"ranking_{split}")
        label = conversion_if_clicked(ingested, f"ranking_{split}")
        assert len(label) == len(rows) and not np.isnan(label).any()
        clicked = rows["click"].to_numpy() == 1
        assert (label[clicked] == rows["conversion"].to_numpy()[clicked]).all()  # the logged label where clicked
        assert 0 < label[~clicked].mean() < 1  # and drawn for the impressions nobody clicked


def test_leave_last_out_per_user(ingested):
    train, test = read(ingested, "recall_train"), read(ingested, "recall_test")
    assert test["user_id"].is_unique
    last_train = train.groupby("user_id")["ts"].max()
    assert (test.set_index("user_id")["ts"] >= last_train.loc[test["user_id"]].values).all()
    # the test history is the user's last training items, most recent last
    row = test.iloc[0]
    user_train = train[train["user_id"] == row["user_id"]].sort_values("ts")
    assert list(row["hist"]) == user_train["item_id"].tolist()[-len(row["hist"]) :]


def test_history_is_strictly_before_each_example(ingested):
    train = read(ingested, "recall_train").sort_values(["user_id", "ts"])
    first = train.groupby("user_id").head(1)
    assert all(len(h) == 0 for h in first["hist"])
    assert all(len(h) <= 10 for h in train["hist"])


def test_ranking_split_is_time_ordered(ingested):
    tr, va, te = (read(ingested, f"ranking_{s}") for s in ("train", "valid", "test"))
    assert tr["ts"].max() <= va["ts"].min() and va["ts"].max() <= te["ts"].min()
    assert set(np.unique(tr["click"])) <= {0, 1}


def test_behavior_log_is_sorted_and_ranking_rows_cut_their_windows_from_it(ingested):
    from components.artifacts import load_ranking

    processed = ingested / "data" / "processed"
    log = read(ingested, "behaviors")
    assert list(log.columns) == ["user_id", "item_id", "category", "ts"]
    assert log.equals(log.sort_values(["user_id", "ts"], kind="stable"))
    schema = Schema.from_json((processed / "schema.json").read_text())
    table = load_ranking(processed, "ranking_test", schema, ["user", "item", "behavior", "long"])
    row = table.take(slice(0, 1))
    user, ts = int(row["user_id"][0]), int(row["ts"][0])
    before = log[(log["user_id"] == user) & (log["ts"] < ts)]["item_id"].tolist()[-32:]  # long_history_len 32
    window = row["long_item"][0].tolist()
    assert window[len(window) - len(before):] == before and not any(window[: len(window) - len(before)])
    items = read(ingested, "items").set_index("item_id")["category"]
    hist, cats = row["hist"][0], row["hist_category"][0]
    assert all(int(c) == (items[int(h)] if h else 0) for h, c in zip(hist, cats))
    assert not ((row["hist_neg"] == row["hist"]) & (row["hist"] > 0)).any()
    plain = load_ranking(processed, "ranking_test", schema, ["user", "item"])
    assert "long_item" not in plain.take(slice(0, 1))  # models that do not read the long log do not pay for it


def test_without_a_behavior_file_the_interactions_are_the_long_log(raw_copy):
    root, raw = raw_copy
    (raw / "behaviors.parquet").unlink()
    run_stage("ingest", root=root)
    log, events = read(root, "behaviors"), read(root, "recall_train")
    assert len(log) == len(events) + len(read(root, "recall_test"))


def test_same_params_same_outputs(ingested, tmp_path):
    shutil.copy(ingested / "params.yaml", tmp_path / "params.yaml")
    run_stage("ingest", root=tmp_path)
    for name in ["recall_train", "ranking_test", "items"]:
        assert read(tmp_path, name).equals(read(ingested, name))


def rename_header(path: Path, old: str, new: str) -> None:
    """Rename column ``old`` to ``new`` in a CSV file's header line."""
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace(old, new)
    path.write_text("\n".join(lines) + "\n")


def edit_csv(path: Path, line: int, column: int, value: str) -> None:
    """Set one field (0-based column) on a 1-based line of a CSV file."""
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def _fails(root: Path, match: str, capsys, *more: str) -> None:
    """Ingest fails with ``match`` (and each of ``more``) in its short message, writing nothing."""
    processed = root / "data" / "processed"
    before = sorted(p.name for p in processed.iterdir()) if processed.exists() else None
    assert main(["ingest", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    for expected in (match, *more):
        assert expected in err, err
    assert len(err.strip().splitlines()) <= 2
    after = sorted(p.name for p in processed.iterdir()) if processed.exists() else None
    assert after == before  # nothing half-written
    assert not [p for p in (root / "data").glob(".*") if p.name.endswith(".tmp")]


def test_missing_raw_file(raw_copy, capsys):
    root, raw = raw_copy
    (raw / "items.csv").unlink()
    _fails(root, "items.csv: missing raw file", capsys)


def test_missing_column(raw_copy, capsys):
    root, raw = raw_copy
    rename_header(raw / "impressions.csv", "click", "clicked")
    _fails(root, "impressions.csv: missing column(s) ['click']", capsys)


def test_non_numeric_id_names_file_column_and_line(raw_copy, capsys):
    root, raw = raw_copy
    edit_csv(raw / "interactions.csv", 4, 1, "abc")
    _fails(root, "interactions.csv: column 'item_id' line 4: 'abc' is not a valid bigint", capsys)


def test_non_numeric_label(raw_copy, capsys):
    root, raw = raw_copy
    edit_csv(raw / "impressions.csv", 3, 3, "yes")
    _fails(root, "impressions.csv: column 'click' line 3: 'yes' is not a valid integer", capsys)


def test_fractional_id_is_not_rounded(raw_copy, capsys):
    root, raw = raw_copy
    edit_csv(raw / "interactions.csv", 5, 0, "1.5")
    _fails(root, "interactions.csv: column 'user_id' line 5: '1.5' is not a valid bigint", capsys)


def test_fractional_label_is_not_rounded(raw_copy, capsys):
    root, raw = raw_copy
    edit_csv(raw / "impressions.csv", 2, 3, "0.7")
    _fails(root, "impressions.csv: column 'click' line 2: '0.7' is not a valid integer", capsys)


def test_history_keeps_every_event_sharing_a_timestamp(tmp_path):
    """Events logged in the same second all precede a later impression."""
    raw = tmp_path / "raw"
    raw.mkdir()
    users, items = range(1, 3001), range(101, 109)
    (raw / "users.csv").write_text("user_id,gender,age,region\n" + "".join(f"{u},F,30,a\n" for u in users))
    (raw / "items.csv").write_text("item_id,category,brand,price\n" + "".join(f"{i},c,b,1.0\n" for i in items))
    # every user logs all items in the same second, interleaved with the other users; enough users
    # that DuckDB runs the as-of join in parallel, where the old join picked an arbitrary tied event
    (raw / "interactions.csv").write_text("user_id,item_id,ts\n" + "".join(f"{u},{i},10\n" for i in items for u in users))
    (raw / "impressions.csv").write_text(
        "user_id,item_id,ts,click,conversion\n" + "".join(f"{u},101,{20 + t},{t % 2},0\n" for t in range(6) for u in users)
    )
    files_params(tmp_path, raw)
    run_stage("ingest", root=tmp_path)
    ranking = pd.concat([read(tmp_path, f"ranking_{s}") for s in ("train", "valid", "test")])
    assert all(sorted(h) == list(range(1, 9)) for h in ranking["hist"])  # all eight items, encoded 1..8


def test_empty_table(raw_copy, capsys):
    root, raw = raw_copy
    path = raw / "users.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    _fails(root, "users.csv: no rows", capsys)


def test_unknown_item_in_log(raw_copy, capsys):
    root, raw = raw_copy
    edit_csv(raw / "interactions.csv", 2, 1, "999999999")
    _fails(root, "line 2: 999999999 is not in the items file", capsys)


def test_failed_ingest_keeps_previous_outputs(ingested, raw_copy, capsys):
    root, raw = raw_copy
    run_stage("ingest", root=root)
    good = read(root, "recall_train")
    (raw / "users.csv").write_text("user_id,gender,age,region\n")
    _fails(root, "no rows", capsys)
    assert read(root, "recall_train").equals(good)


def test_synthetic_refuses_to_overwrite_foreign_raw_dir(tmp_path, capsys):
    raw = tmp_path / "mine"
    raw.mkdir()
    (raw / "precious.csv").write_text("keep me\n")
    params = tiny_params_dict(ingest={"raw_dir": str(raw)})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["ingest", "--root", str(tmp_path)]) == 1
    assert "did not generate" in capsys.readouterr().err
    assert (raw / "precious.csv").read_text() == "keep me\n"


def test_parquet_raw_files_are_read_too(raw_copy):
    import pyarrow.csv as pacsv

    root, raw = raw_copy
    table = pacsv.read_csv(raw / "users.csv")
    pq.write_table(table, raw / "users.parquet")
    (raw / "users.csv").unlink()
    run_stage("ingest", root=root)
    assert len(read(root, "users")) == table.num_rows


def test_stages_refuse_data_that_failed_validation(tmp_path):
    from components.errors import ValidationFailed

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    run_stage("ingest", root=tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "validation.json").write_text('{"success": false}')
    for stage in ("negative_sample", "train_ranker", "train_mtl"):
        with pytest.raises(ValidationFailed, match="failed validation"):
            run_stage(stage, root=tmp_path)


def test_atomic_dir_puts_the_old_artefact_back_when_the_swap_fails(tmp_path, monkeypatch):
    import os

    from components import io

    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # moving the new directory in
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        with io.atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_further_impression_columns_are_real_valued_labels(ingested):
    processed = ingested / "data" / "processed"
    schema = Schema.from_json((processed / "schema.json").read_text())
    assert schema.labels == ("click", "conversion") and schema.values == ("log_dwell",)
    test = read(ingested, "ranking_test")
    assert (test.loc[test["click"] == 0, "log_dwell"] == 0).all()
    assert (test.loc[test["click"] == 1, "log_dwell"] > 0).mean() > 0.9


def test_non_numeric_real_valued_label_says_why_the_column_is_read(raw_copy, capsys):
    root, raw = raw_copy
    edit_csv(raw / "impressions.csv", 6, 5, "long")
    _fails(root, "impressions.csv: column 'log_dwell' line 6: 'long' is not a valid double", capsys,
           "is a real-valued label that train_mtl.tasks can name")


@pytest.mark.parametrize("name", ["price", "split", "hist_ts", "hist_category"])
def test_a_further_impression_column_may_not_take_a_ranking_column_name(raw_copy, capsys, name):
    """Else DuckDB would rename one copy and the task would silently train on the feature."""
    root, raw = raw_copy
    rename_header(raw / "impressions.csv", "log_dwell", name)
    _fails(root, f"impressions.csv: column(s) ['{name}']: every impressions column beyond", capsys)


def test_a_raw_column_named_line_is_refused(raw_copy, capsys):
    root, raw = raw_copy
    path = raw / "items.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",line"] + [row + ",1" for row in lines[1:]]) + "\n")
    _fails(root, "items.csv: column 'line' is reserved", capsys)


def _set_bad_rows(root: Path, mode: str) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["ingest"]["bad_rows"] = mode
    path.write_text(yaml.safe_dump(params))


def _replace_line(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text
    path.write_bytes(b"\n".join(lines))


def test_a_line_with_too_few_fields_names_file_and_line(raw_copy, capsys):
    root, raw = raw_copy
    _replace_line(raw / "interactions.csv", 7, b"1,2")
    _fails(root, "interactions.csv: line 7: Expected Number of Columns: 3 Found: 2", capsys)


def test_a_line_that_is_not_utf8_names_file_and_line(raw_copy, capsys):
    root, raw = raw_copy
    path = raw / "users.csv"
    fields = path.read_bytes().split(b"\n")[4].split(b",")
    fields[1] = b"\xff\xfe"
    _replace_line(path, 5, b",".join(fields))
    _fails(root, "users.csv: line 5: Invalid unicode", capsys)


def test_skip_counts_malformed_rows_and_keeps_the_rest(raw_copy):
    root, raw = raw_copy
    _set_bad_rows(root, "skip")
    interactions = raw / "interactions.csv"
    n_lines = len(interactions.read_text().splitlines())
    _replace_line(interactions, 7, b"1,2")  # too few fields
    _replace_line(interactions, 9, b"1,2,3,4")  # too many
    edit_csv(interactions, 11, 1, "abc")  # not an id
    edit_csv(interactions, 13, 2, "")  # empty required time
    edit_csv(raw / "impressions.csv", 4, 5, "long")  # a real-valued label that is not a number
    run_stage("ingest", root=root)
    run_stage("validate", root=root)
    meta = json.loads((root / "data/processed/meta.json").read_text())
    skipped = {s["file"]: s for s in meta["skipped_rows"]}
    assert set(skipped) == {"interactions.csv", "impressions.csv"}
    assert skipped["interactions.csv"]["rows"] == 4 and skipped["interactions.csv"]["lines"] == [7, 9, 11, 13]
    assert skipped["interactions.csv"]["reasons"] == {
        "missing columns": 1, "too many columns": 1, "item_id: not a valid bigint": 1, "ts: empty": 1}
    assert skipped["impressions.csv"] == {"file": "impressions.csv", "table": "impressions", "rows": 1,
                                          "reasons": {"log_dwell: not a valid double": 1}, "lines": [4]}
    report = json.loads((root / "reports/validation.json").read_text())
    assert report["skipped_rows"] == meta["skipped_rows"]
    events = len(read(root, "recall_train")) + len(read(root, "recall_test"))
    assert events == n_lines - 1 - 4  # header and the skipped rows: nothing else is dropped


def test_skip_keeps_the_lines_of_the_rows_after_a_refused_line(raw_copy):
    """Line numbers stay the file's own after the reader drops a line (they order same-time events)."""
    root, raw = raw_copy
    _set_bad_rows(root, "skip")
    _replace_line(raw / "interactions.csv", 3, b"1,2")
    edit_csv(raw / "interactions.csv", 8, 0, "x")
    run_stage("ingest", root=root)
    meta = json.loads((root / "data/processed/meta.json").read_text())
    assert meta["skipped_rows"][0]["lines"] == [3, 8]


def _with_ingest(root: Path, **ingest) -> Path:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ingest"].update(ingest)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def test_k_core_leaves_every_user_and_item_with_k_interactions(raw_copy):
    root, _ = raw_copy
    run_stage("ingest", root=_with_ingest(root, k_core=8))
    events = pd.concat([read(root, "recall_train"), read(root, "recall_test")])
    assert events.groupby("user_id").size().min() >= 8 and events.groupby("item_id").size().min() >= 8
    preparation = json.loads((root / "data/processed/meta.json").read_text())["preparation"]["k_core"]
    raw = pd.read_csv(root / "raw" / "interactions.csv")
    assert preparation["removed_interactions"] == len(raw) - len(events) > 0 and preparation["rounds"] >= 1
    # users and items outside the core leave the data set: the catalogue, the side tables, the labelled rows
    assert set(read(root, "items")["item_id"]) == set(events["item_id"])
    assert set(read(root, "users")["user_id"]) == set(events["user_id"])
    ranking = pd.concat([read(root, f"ranking_{split}") for split in ("train", "valid", "test")])
    assert set(ranking["item_id"]) <= set(events["item_id"]) and preparation["removed_impressions"] > 0
    vocab = pd.read_parquet(root / "data/processed/vocab/item_id.parquet")
    assert len(vocab) == events["item_id"].nunique()


def test_k_core_removes_ids_outside_the_core_even_when_no_interaction_goes(raw_copy):
    """A user with impressions and no interactions is outside every core, k = 1 included."""
    root, raw = raw_copy
    impression = pd.read_csv(raw / "impressions.csv").iloc[0]
    with open(raw / "users.csv", "a") as f:
        f.write("999999999,F,30,r1\n")
    with open(raw / "impressions.csv", "a") as f:
        f.write(f"999999999,{impression['item_id']},{impression['ts']},0,0,0\n")
    run_stage("ingest", root=_with_ingest(root, k_core=1))
    preparation = json.loads((root / "data/processed/meta.json").read_text())["preparation"]["k_core"]
    assert preparation["removed_interactions"] == 0 and preparation["removed_users"] >= 1
    assert preparation["removed_impressions"] >= 1
    vocab = pd.read_parquet(root / "data/processed/vocab/user_id.parquet")
    assert 999999999 not in set(vocab["raw"])


def test_k_core_that_leaves_nothing_says_so(raw_copy, capsys):
    root, _ = raw_copy
    _with_ingest(root, k_core=10_000)
    _fails(root, "ingest.k_core: 10000: no interaction is left", capsys)


def test_time_ratio_makes_every_event_after_the_cut_a_test_row(raw_copy):
    root, _ = raw_copy
    run_stage("ingest", root=_with_ingest(root, recall_split={"name": "time_ratio", "test_fraction": 0.2}))
    train, test = read(root, "recall_train"), read(root, "recall_test")
    assert train["ts"].max() < test["ts"].min()
    assert set(test["user_id"]) <= set(train["user_id"])  # a test row's user has training events
    assert not test["user_id"].is_unique  # several test rows per user
    raw = pd.read_csv(root / "raw" / "interactions.csv")
    assert 0.75 < len(train) / len(raw) < 0.85  # the events before the cut
    # each test row's history runs up to it, test-period events included
    row = test.sort_values(["user_id", "ts"]).groupby("user_id").nth(1).iloc[0]
    earlier = pd.concat([train, test])
    earlier = earlier[(earlier["user_id"] == row["user_id"]) & (earlier["ts"] < row["ts"])].sort_values("ts")
    assert list(row["hist"]) == earlier["item_id"].tolist()[-len(row["hist"]):]
