"""``ingest.source: sequences`` on tiny files in SASRec's ``pairs`` and S3-Rec's ``lists`` layouts
(tests/sources/sequences.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from components.errors import DataError
from pipelines.runner import run_stage
from rechub_core.features import Schema
from tests.sources import sequences as tiny
from tests import sources

HISTORY_LEN = 10  # tiny params' ingest.history_len
SEQS = tiny.sequences()  # what the writer writes by default: user u + 1's items in time order


def project(root: Path, format: str, *, run: bool = True, **ingest) -> Path:
    return sources.project(root, tiny.write(root / "raw", format), run=run, **ingest)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return project(tmp_path_factory.mktemp("pairs"), "pairs")


@pytest.fixture(scope="module")
def lists(tmp_path_factory) -> Path:
    return project(tmp_path_factory.mktemp("lists"), "lists")


@pytest.fixture(params=["pairs", "lists"])
def ingested(request) -> Path:
    return request.getfixturevalue(request.param)


def read(root: Path, name: str) -> pd.DataFrame:
    return pq.read_table(root / "data" / "processed" / f"{name}.parquet").to_pandas()


def vocab(root: Path, name: str) -> dict:
    table = read(root, f"vocab/{name}")
    return dict(zip(table["id"], table["raw"]))


def outputs(root: Path) -> dict[str, pd.DataFrame]:
    return {name: read(root, name) for name in ("users", "items", "recall_train", "recall_test")}


def same_outputs(a: Path, b: Path) -> None:
    for name, table in outputs(a).items():
        assert table.equals(read(b, name)), name


def replace_line(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text
    path.write_bytes(b"\n".join(lines))


# --- what ingest writes -----------------------------------------------------------------------------


def test_recall_tables_only_with_the_row_counts_of_the_file(ingested):
    processed = ingested / "data" / "processed"
    meta = json.loads((processed / "meta.json").read_text())
    n_events = sum(len(s) for s in SEQS)
    assert any(len(set(s)) < len(s) for s in SEQS)  # repeated items are events too
    assert meta["rows"] == {"users": len(SEQS), "items": len({i for s in SEQS for i in s}),
                            "recall_train": n_events - len(SEQS), "recall_test": len(SEQS)}
    assert meta["provides"] == {"recall": True, "ranking": False}
    assert not list(processed.glob("ranking_*")) and not (processed / "behaviors.parquet").exists()
    assert meta["preparation"]["sequences"]["longest_sequence"] == max(len(s) for s in SEQS)
    assert meta["skipped_rows"] == []


def test_schema_is_ids_and_histories(ingested):
    schema = Schema.from_json((ingested / "data/processed/schema.json").read_text())
    names = {group: [f.name for f in feats] for group, feats in schema.groups.items()}
    assert names == {"user": ["user_id", "hist"], "item": ["item_id"]}
    assert schema.labels == () and schema.values == ()
    assert schema.feature("item_id").vocab_size == len({i for s in SEQS for i in s}) + 1


def test_both_formats_give_the_same_tables(pairs, lists):
    same_outputs(pairs, lists)


def test_leave_one_out_holds_out_each_users_last_item(ingested):
    """The protocol of SASRec and S3-Rec: the last item is the test item, the items before it its history;
    time is the position in the sequence."""
    users, items = vocab(ingested, "user_id"), vocab(ingested, "item_id")
    test = read(ingested, "recall_test")
    assert test["user_id"].is_unique and len(test) == len(SEQS)
    for row in test.itertuples():
        seq = SEQS[users[row.user_id] - 1]
        assert items[row.item_id] == seq[-1] and row.ts == len(seq)
        assert [items[i] for i in row.hist] == seq[-1 - HISTORY_LEN:-1]
        assert list(row.hist_ts) == list(range(max(1, len(seq) - HISTORY_LEN), len(seq)))
    train = read(ingested, "recall_train")
    assert (train.groupby("user_id")["ts"].apply(list) == train.groupby("user_id")["ts"].apply(
        lambda ts: list(range(1, len(ts) + 1)))).all()


# --- the reading rules ----------------------------------------------------------------------------


def test_pairs_of_a_user_need_not_be_contiguous(pairs, tmp_path):
    """A user's events are ordered by their lines wherever they are: interleaving users changes nothing."""
    root = project(tmp_path, "pairs", run=False)
    path = root / "raw" / tiny.FILE
    rows = [(pos, u + 1, item) for u, seq in enumerate(SEQS) for pos, item in enumerate(seq)]
    path.write_text("".join(f"{u} {item}\n" for _, u, item in sorted(rows)))  # round robin over the users
    assert path.read_text().splitlines()[:2] == [f"1 {SEQS[0][0]}", f"2 {SEQS[1][0]}"]
    run_stage("ingest", root=root)
    same_outputs(pairs, root)


def test_lists_tolerate_runs_of_blanks(lists, tmp_path):
    root = project(tmp_path, "lists", run=False)
    path = root / "raw" / tiny.FILE
    lines = path.read_text().splitlines()
    lines = [(" " if k % 3 == 0 else "") + line.replace(" ", "  " if k % 2 else "\t", 1) + (" " if k % 5 == 0 else "")
             for k, line in enumerate(lines)]
    path.write_text("\n".join(lines) + "\n")
    run_stage("ingest", root=root)
    same_outputs(lists, root)


# --- malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize("format, line, text, message", [
    ("pairs", 3, b"5", "line 3: Expected Number of Columns: 2 Found: 1"),
    ("pairs", 3, b"5 6 7", "line 3: Expected Number of Columns: 2 Found: 3"),
    ("pairs", 4, b"1 abc", "column 'item_id' line 4: 'abc' is not a valid bigint"),
    ("pairs", 6, b"u1 7", "column 'user_id' line 6: 'u1' is not a valid bigint"),
    ("pairs", 5, b"1 \xff", "line 5: Invalid unicode"),
    ("lists", 4, b"4 1 2 x7 3", "line 4: item 3 'x7' is not an integer id"),
    ("lists", 4, b"4 1 2.5 3", "line 4: item 2 '2.5' is not an integer id"),
    ("lists", 2, b"u2 1 2 3", "line 2: user id 'u2' is not an integer id"),
    ("lists", 6, b"6", "line 6: a user and no items"),
    ("lists", 6, b"", "column 'text' line 6: empty value in a required column"),
    ("lists", 5, b"5 1 \xff 2", "line 5: Invalid unicode"),
])
def test_malformed_line_names_file_and_line(tmp_path, format, line, text, message):
    root = project(tmp_path, format, run=False)
    path = root / "raw" / tiny.FILE
    replace_line(path, line, text)
    with pytest.raises(DataError, match="^" + re.escape(f"{path}: {message}")):
        run_stage("ingest", root=root)


def test_skip_counts_malformed_pairs(tmp_path):
    root = project(tmp_path, "pairs", run=False, bad_rows="skip")
    path = root / "raw" / tiny.FILE
    for line, text in ((3, b"5"), (8, b"1 abc"), (12, b"1 \xff"), (20, b"1 2 3")):
        replace_line(path, line, text)
    run_stage("ingest", root=root)
    meta = json.loads((root / "data/processed/meta.json").read_text())
    assert meta["skipped_rows"] == [{"file": tiny.FILE, "table": "interactions", "rows": 4, "lines": [3, 8, 12, 20],
                                     "reasons": {"missing columns": 1, "item_id: not a valid bigint": 1,
                                                 "invalid encoding": 1, "too many columns": 1}}]
    assert meta["rows"]["recall_train"] + meta["rows"]["recall_test"] == sum(len(s) for s in SEQS) - 4


def test_skip_counts_malformed_lists_and_leaves_out_their_users(tmp_path):
    root = project(tmp_path, "lists", run=False, bad_rows="skip")
    path = root / "raw" / tiny.FILE
    bad = {2: b"u2 1 2 3", 4: b"4 1 x 3", 6: b"6", 9: b"9 \xff 1", 11: b"", 13: b"x"}
    for line, text in bad.items():
        replace_line(path, line, text)
    run_stage("ingest", root=root)
    meta = json.loads((root / "data/processed/meta.json").read_text())
    assert meta["skipped_rows"] == [{"file": tiny.FILE, "table": "interactions", "rows": 6,
                                     "lines": [2, 4, 6, 9, 11, 13],
                                     "reasons": {"invalid encoding": 1, "text: empty": 1,
                                                 "user_id: not an integer id": 2, "item_id: not an integer id": 1,
                                                 "no items": 1}}]
    kept = [s for u, s in enumerate(SEQS) if u + 1 not in bad]
    assert meta["rows"]["users"] == len(kept) == len(SEQS) - 6
    assert meta["rows"]["recall_train"] + meta["rows"]["recall_test"] == sum(len(s) for s in kept)


def test_every_line_malformed(tmp_path):
    root = project(tmp_path, "lists", run=False, bad_rows="skip")
    (root / "raw" / tiny.FILE).write_text("1\n2\n")
    with pytest.raises(DataError, match="every line is malformed"):
        run_stage("ingest", root=root)


def test_missing_file_is_named(tmp_path):
    root = project(tmp_path, "pairs", run=False, sequences={"file": "ml-1m.txt", "format": "pairs"})
    with pytest.raises(DataError, match=re.escape(f"{root / 'raw' / 'ml-1m.txt'}: missing raw file (sequences.file")):
        run_stage("ingest", root=root)
