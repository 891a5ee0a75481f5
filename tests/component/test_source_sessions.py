"""``source: sessions``: YOOCHOOSE / DIGINETICA prepared as the session-based papers (NARM, STAMP, SR-GNN) prepare them.

The tiny logs of ``tests.sources.sessions`` are checked against an independent re-implementation of
the reference script's procedure (SR-GNN ``datasets/preprocess.py``), and a hand-written log checks
each preparation rule with a case that only that rule decides.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from components.errors import DataError
from rechub_core.features import Schema
from tests.conftest import TINY
from tests.sources.sessions import write
from tests import sources

HISTORY = TINY["ingest"]["history_len"]


def ingest(root: Path, overrides: dict, **ingest_keys) -> Path:
    """Run the ingest stage in project ``root`` reading what ``overrides`` name; returns data/processed."""
    return sources.project(root, overrides, run=True, **ingest_keys) / "data" / "processed"


def table(processed: Path, name: str) -> list[dict]:
    return pq.read_table(processed / f"{name}.parquet").to_pylist()


def decoded(processed: Path, name: str) -> list[tuple]:
    """``recall_<name>`` rows as (raw session id, raw history items, raw target item), sorted."""
    users = {r["id"]: r["raw"] for r in table(processed, "vocab/user_id")}
    items = {r["id"]: r["raw"] for r in table(processed, "vocab/item_id")}
    rows = table(processed, f"recall_{name}")
    return sorted((users[r["user_id"]], tuple(items[i] for i in r["hist"]), items[r["item_id"]]) for r in rows)


def prefixes(sessions: dict[int, list[int]], first: int) -> list[tuple]:
    """The rows the papers' prefix augmentation makes of ``sessions``: every target from position ``first``."""
    return sorted((sid, tuple(seq[max(0, k - HISTORY):k]), seq[k])
                  for sid, seq in sessions.items() for k in range(first, len(seq)))


def seconds(text: str, layout: str) -> float:
    return datetime.strptime(text, layout).replace(tzinfo=timezone.utc).timestamp()


def reference(path: Path, dataset: str, test_days: int, min_count: int, fraction: int):
    """The reference procedure in plain Python (SR-GNN's preprocess.py, read in UTC): (train, test) sessions."""
    clicks: dict[int, list] = {}
    when: dict[int, float] = {}  # a session's time: its last row's
    with open(path, newline="") as f:
        rows = csv.reader(f, delimiter="," if dataset == "yoochoose" else ";")
        if dataset == "diginetica":
            next(rows)
        for row in rows:
            sid = int(row[0])
            if dataset == "yoochoose":
                clicks.setdefault(sid, []).append(int(row[2]))
                when[sid] = seconds(row[1][:19], "%Y-%m-%dT%H:%M:%S")
            else:
                clicks.setdefault(sid, []).append((int(row[2]), int(row[3])))
                when[sid] = seconds(row[4], "%Y-%m-%d")
    if dataset == "diginetica":
        clicks = {s: [i for i, _ in sorted(c, key=lambda x: x[1])] for s, c in clicks.items()}
    clicks = {s: c for s, c in clicks.items() if len(c) > 1}
    counts: dict[int, int] = {}
    for c in clicks.values():
        for i in c:
            counts[i] = counts.get(i, 0) + 1
    clicks = {s: [i for i in c if counts[i] >= min_count] for s, c in clicks.items()}
    clicks = {s: c for s, c in clicks.items() if len(c) >= 2}
    cut = max(when[s] for s in clicks) - 86400 * test_days
    train = sorted((s for s in clicks if when[s] < cut), key=lambda s: when[s])  # stable: file order on ties
    known = {i for s in train for i in clicks[s]}
    test = {s: [i for i in clicks[s] if i in known] for s in clicks if when[s] > cut}
    test = {s: c for s, c in test.items() if len(c) >= 2}
    if fraction > 1:
        owners = [s for s in train for _ in range(len(clicks[s]) - 1)]  # the session of each prefix, in order
        train = train[train.index(owners[-(len(owners) // fraction)]):]
    return {s: clicks[s] for s in train}, test


# --- the tiny logs against the reference --------------------------------------------------------------------


@pytest.fixture(scope="module")
def yoochoose(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("yoochoose")
    overrides = write(root / "raw", "yoochoose")
    return ingest(root, overrides), overrides


@pytest.mark.parametrize("dataset,fraction", [("yoochoose", 1), ("yoochoose", 4), ("diginetica", 1)])
def test_recall_rows_are_the_reference_prefixes(tmp_path, yoochoose, dataset, fraction):
    if (dataset, fraction) == ("yoochoose", 1):
        processed, overrides = yoochoose
    else:
        overrides = write(tmp_path / "raw", dataset, fraction=fraction)
        processed = ingest(tmp_path, overrides)
    p = overrides["sessions"]
    train, test = reference(Path(overrides["raw_dir"]) / p["file"], dataset, p["test_days"], p["min_item_count"],
                            fraction)
    assert len(train) > 20 and len(test) > 20  # the log spans enough days for both
    # every event after a session's first, its hist the session's earlier items: the papers' prefixes
    assert decoded(processed, "train") == prefixes(train, 1)
    assert decoded(processed, "test") == prefixes(test, 1)
    meta = json.loads((processed / "meta.json").read_text())
    n_train, n_test = sum(map(len, train.values())), sum(map(len, test.values()))
    assert meta["rows"]["recall_train"] == n_train - len(train) and meta["rows"]["recall_test"] == n_test - len(test)
    assert meta["rows"]["users"] == len(train) + len(test)
    assert meta["rows"]["items"] == len({i for c in [*train.values(), *test.values()] for i in c})
    prep = meta["preparation"]
    assert prep["train"]["sessions"] == len(train) and prep["test"]["sessions"] == len(test)
    assert prep["train"]["events"] == n_train and prep["test"]["events"] == n_test
    assert prep["read"] == {"sessions": 400, "events": len(Path(overrides["raw_dir"], p["file"]).read_text()
                                                          .splitlines()) - (dataset == "diginetica")}
    # the planted removals happened: one-click sessions, rare items, items clicked only in the test period
    assert prep["single_event_sessions"]["sessions"] > 0 and prep["rare_items"]["items"] > 0
    assert prep["test_items_not_in_train"]["events"] > 0
    if fraction > 1:
        assert prep["fraction"]["kept_prefixes"] == prep["fraction"]["training_prefixes"] // fraction


def test_tables_schema_and_meta(yoochoose):
    processed, _ = yoochoose
    names = {p.name for p in processed.glob("*.parquet")}
    assert names == {"users.parquet", "items.parquet", "recall_train.parquet", "recall_test.parquet"}  # no ranking
    schema = Schema.from_json((processed / "schema.json").read_text())
    # anonymous sessions: the user tower sees the history only, not the session id
    assert [f.name for f in schema.groups["user"]] == ["hist"]
    assert [f.name for f in schema.groups["item"]] == ["item_id"]
    assert set(schema.groups) == {"user", "item"} and schema.labels == () and schema.values == ()
    n_items = len(table(processed, "vocab/item_id"))
    assert schema.feature("item_id").vocab_size == n_items + 1 == schema.feature("hist").vocab_size
    meta = json.loads((processed / "meta.json").read_text())
    assert meta["source"] == "sessions" and meta["recall_split"] == "given" and meta["skipped_rows"] == []
    assert meta["provides"] == {"recall": True, "ranking": False}
    # each session is one user, in train or in test, never both
    train = {r["user_id"] for r in table(processed, "recall_train")}
    test = {r["user_id"] for r in table(processed, "recall_test")}
    assert train and test and not train & test
    # the split is by time: training sessions end before the cut, test sessions after it
    cut = seconds(meta["preparation"]["split"]["cut"], "%Y-%m-%d %H:%M:%S") * 1000
    for name, before in (("recall_train", True), ("recall_test", False)):
        ends: dict[int, int] = {}
        for r in table(processed, name):
            ends[r["user_id"]] = max(ends.get(r["user_id"], 0), r["ts"])
        assert all((end < cut) == before for end in ends.values()), name


# --- each rule on a hand-written log ---------------------------------------------------------------------------

A, B, C, D, P, Q, R, Z, N = range(11, 20)
# session id: (clicks as (time on 2014-04-DD, item)); min_item_count 3, the last day tests
RULES = {
    1: [("01T10:00:00.000", A), ("01T10:01:00.000", B), ("01T10:02:00.000", C), ("01T10:03:00.000", D)],
    2: [("01T11:00:00.000", B), ("01T11:01:00.000", C), ("01T11:02:00.000", A), ("01T11:03:00.000", D)],
    3: [("02T10:00:00.000", C), ("02T10:01:00.000", A), ("02T10:02:00.000", B), ("02T10:03:00.000", D)],
    4: [("02T11:00:00.000", A)],  # one click: removed
    5: [("02T11:30:00.000", Q)],  # one click: removed before items are counted, so Q has 2 clicks, not 3
    6: [("02T12:00:00.000", A), ("02T12:01:00.000", Q), ("02T15:02:00.000", B)],  # loses Q; ends as 9 ends
    7: [("02T13:00:00.000", Q), ("02T13:01:00.000", C)],  # loses Q, then too short
    8: [("02T14:00:00.000", R), ("02T14:01:00.000", R)],  # R is rare: nothing left
    9: [("02T15:00:00.000", P), ("02T15:01:00.000", A), ("02T15:02:00.000", B)],
    10: [("02T16:00:00.000", P), ("02T16:01:00.000", Z)],  # loses Z, too short; P keeps its count of 3
    11: [("02T17:00:00.000", P), ("02T17:01:00.000", C)],
    12: [("03T11:00:00.000", B), ("03T11:30:00.000", C), ("03T12:30:00.000", A)],  # ends after the cut: test
    13: [("03T11:50:00.000", A), ("03T12:00:00.500", B)],  # ends at the cut (in whole seconds): neither
    14: [("04T09:00:00.000", A), ("04T09:01:00.000", B), ("04T09:02:00.000", D)],
    15: [("04T10:00:00.000", A), ("04T10:01:00.000", N), ("04T10:02:00.000", B)],  # N: never in training
    16: [("04T11:00:00.000", N), ("04T11:01:00.000", N), ("04T11:02:00.000", C)],  # too short without N
    17: [("04T11:59:00.000", C), ("04T12:00:00.000", A)],  # the latest: the cut is 2014-04-03 12:00:00
}
TRAIN = {1: [A, B, C, D], 2: [B, C, A, D], 3: [C, A, B, D], 6: [A, B], 9: [P, A, B], 11: [P, C]}
TEST = {12: [B, C, A], 14: [A, B, D], 15: [A, B], 17: [C, A]}


def write_clicks(raw: Path, sessions: dict) -> dict:
    raw.mkdir(parents=True, exist_ok=True)
    lines = [f"{sid},2014-04-{t}Z,{item},0" for sid, clicks in sessions.items() for t, item in clicks]
    (raw / "yoochoose-clicks.dat").write_text("\n".join(lines) + "\n")
    return {"source": "sessions", "raw_dir": str(raw),
            "sessions": {"dataset": "yoochoose", "file": "yoochoose-clicks.dat", "test_days": 1,
                         "min_item_count": 3, "fraction": 1}}


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("rules")
    overrides = write_clicks(root / "raw", RULES)
    return ingest(root, overrides), overrides


def test_each_rule_removes_what_the_reference_removes(rules):
    processed, _ = rules
    assert decoded(processed, "train") == prefixes(TRAIN, 1)
    assert decoded(processed, "test") == prefixes(TEST, 1)
    prep = json.loads((processed / "meta.json").read_text())["preparation"]
    assert prep["read"] == {"sessions": 17, "events": 44}
    assert prep["single_event_sessions"] == {"sessions": 2, "events": 2}  # 4, 5
    assert prep["rare_items"] == {"min_item_count": 3, "items": 3, "events": 5}  # Q (2 left), R, Z; not P
    assert prep["short_after_rare_items"] == {"sessions": 3, "events": 2}  # 7, 8 (emptied), 10
    assert prep["split"] == {"test_days": 1, "latest_session": "2014-04-04 12:00:00", "cut": "2014-04-03 12:00:00",
                             "sessions_at_cut": {"sessions": 1, "events": 2}}  # 13
    assert prep["test_items_not_in_train"] == {"events": 3}  # N in 15 and 16
    assert prep["short_test_sessions"] == {"sessions": 1, "events": 1}  # 16
    assert "fraction" not in prep
    assert prep["train"] == {"sessions": 6, "events": 19, "items": 5}
    assert prep["test"] == {"sessions": 4, "events": 10, "items": 4}


def test_session_events_keep_their_times(rules):
    processed, _ = rules
    users = {r["id"]: r["raw"] for r in table(processed, "vocab/user_id")}
    rows = [r for r in table(processed, "recall_test") if users[r["user_id"]] == 12]
    stamp = seconds("2014-04-03T12:30:00", "%Y-%m-%dT%H:%M:%S") * 1000
    assert [r["ts"] for r in rows] == [stamp - 3_600_000, stamp]  # epoch milliseconds
    assert rows[-1]["hist_ts"] == [stamp - 5_400_000, stamp - 3_600_000]


@pytest.mark.parametrize("fraction,kept", [(4, [9, 11]), (2, [3, 6, 9, 11])])
def test_fraction_keeps_the_latest_training_prefixes(tmp_path, fraction, kept):
    """13 training prefixes (sessions 1, 2, 3: 3 each; 6: 1; 9: 2; 11: 1, in time order, 6 before 9 in the file
    where they end at the same second): 1/4 is the last 3, held by 9 and 11; 1/2 is the last 6, from within
    session 3 (kept whole). The test set stays, D included though 1/4 of the training sessions never show it
    (as in the reference and the papers' statistics)."""
    overrides = write_clicks(tmp_path / "raw", RULES)
    overrides["sessions"]["fraction"] = fraction
    processed = ingest(tmp_path, overrides)
    assert decoded(processed, "train") == prefixes({s: TRAIN[s] for s in kept}, 1)
    assert decoded(processed, "test") == prefixes(TEST, 1)
    prep = json.loads((processed / "meta.json").read_text())["preparation"]["fraction"]
    removed = [s for s in TRAIN if s not in kept]
    assert prep == {"fraction": fraction, "training_prefixes": 13, "kept_prefixes": 13 // fraction,
                    "sessions": len(removed), "events": sum(len(TRAIN[s]) for s in removed)}


def test_diginetica_orders_views_by_timeframe_and_tests_the_last_dates(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train-item-views.csv").write_text(
        "sessionId;userId;itemId;timeframe;eventdate\n"
        "1;NA;12;3000;2016-05-01\n1;NA;11;1000;2016-05-01\n1;NA;13;2000;2016-05-01\n"
        "2;7;11;0;2016-05-02\n2;7;12;500;2016-05-02\n2;7;13;900;2016-05-02\n"
        "3;NA;11;0;2016-05-24\n3;NA;12;10;2016-05-24\n"  # the date 7 days before the latest: neither split
        "4;NA;13;50;2016-05-25\n4;NA;11;20;2016-05-25\n"
        "5;NA;12;5;2016-05-31\n5;NA;13;5;2016-05-31\n"  # equal timeframes: file order
        "6;NA;11;0;2016-05-24\n6;NA;13;10;2016-05-23\n"  # its last row's date, 05-23, makes it a training session
    )
    processed = ingest(tmp_path, {"source": "sessions", "raw_dir": str(raw), "sessions": {
        "dataset": "diginetica", "file": "train-item-views.csv", "test_days": 7, "min_item_count": 3, "fraction": 1}})
    assert decoded(processed, "train") == prefixes({1: [11, 13, 12], 2: [11, 12, 13], 6: [11, 13]}, 1)
    assert decoded(processed, "test") == prefixes({4: [11, 13], 5: [12, 13]}, 1)
    day = seconds("2016-05-01", "%Y-%m-%d") * 1000
    rows = table(processed, "recall_train")
    ts = sorted({t for r in rows for t in [r["ts"], *r["hist_ts"]]})  # the first events are in the histories
    assert ts[:3] == [day + 1000, day + 2000, day + 3000]  # the date's epoch milliseconds plus timeframe
    prep = json.loads((processed / "meta.json").read_text())["preparation"]
    assert prep["split"]["cut"] == "2016-05-24 00:00:00" and prep["split"]["sessions_at_cut"]["sessions"] == 1


# --- malformed input ---------------------------------------------------------------------------------------------

BAD_CLICKS = {  # a line inserted into the tiny log, and the reason ingest gives
    "wrong field count": (b"5,2014-04-01T00:00:00.000Z,214500001", "missing columns"),
    "non-numeric session": (b"s5,2014-04-01T00:00:00.000Z,214500001,0", "session_id: not a valid bigint"),
    "non-numeric item": (b"5,2014-04-01T00:00:00.000Z,item1,0", "item_id: not a valid bigint"),
    "bad timestamp": (b"5,2014-04-31T00:00:00.000Z,214500001,0", "timestamp: not a valid timestamp"),
    "not utf-8": (b"5,2014-04-01T00:00:00.000Z,214500001,\xff\xfe", "invalid encoding"),
}


def insert_lines(path: Path, lines: dict[int, bytes]) -> None:
    """Insert ``lines`` so that each lands at its (1-based) line number."""
    rows = path.read_bytes().splitlines()
    for number in sorted(lines):
        rows.insert(number - 1, lines[number])
    path.write_bytes(b"\n".join(rows) + b"\n")


@pytest.mark.parametrize("case", list(BAD_CLICKS))
def test_a_malformed_line_fails_with_file_and_line(tmp_path, case):
    overrides = write(tmp_path / "raw", "yoochoose", n_sessions=60)
    path = tmp_path / "raw" / "yoochoose-clicks.dat"
    insert_lines(path, {17: BAD_CLICKS[case][0]})
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: .*line 17\b"):
        ingest(tmp_path, overrides)


@pytest.mark.parametrize("line,reason", [(b"3;NA;10001;2016-05-01", "column"),  # a field short
                                         (b"3;NA;10001;12x;2016-05-01", "timeframe"),
                                         (b"3;NA;x10001;120;2016-05-01", "itemId"),
                                         (b"3;NA;10001;120;2016-05-01\xc3", "utf-8"),
                                         (b"3;NA;10001;120;01/05/2016", "eventdate")])
def test_a_malformed_diginetica_line_fails_with_file_and_line(tmp_path, line, reason):
    overrides = write(tmp_path / "raw", "diginetica", n_sessions=60)
    path = tmp_path / "raw" / "train-item-views.csv"
    insert_lines(path, {9: line})  # the header is line 1
    where = re.escape(str(path))
    with pytest.raises(DataError, match=rf"(?i){where}: .*line 9\b.*{reason}|{where}: .*{reason}.*line 9\b"):
        ingest(tmp_path, overrides)


def test_skip_counts_malformed_lines_and_reads_the_rest(tmp_path, yoochoose):
    overrides = write(tmp_path / "raw", "yoochoose")
    lines = dict(zip([5, 40, 41, 300, 900], (bad for bad, _ in BAD_CLICKS.values())))
    insert_lines(tmp_path / "raw" / "yoochoose-clicks.dat", lines)
    processed = ingest(tmp_path, overrides, bad_rows="skip")
    meta = json.loads((processed / "meta.json").read_text())
    assert meta["skipped_rows"] == [{"file": "yoochoose-clicks.dat", "table": "clicks", "rows": 5,
                                     "reasons": {reason: 1 for _, reason in BAD_CLICKS.values()},
                                     "lines": [5, 40, 41, 300, 900]}]
    clean, _ = yoochoose  # the same log without the bad lines: the same rows
    for name in ("train", "test"):
        assert decoded(processed, name) == decoded(clean, name)


def test_missing_file_is_named(tmp_path):
    overrides = write(tmp_path / "raw", "yoochoose", n_sessions=30)
    overrides["sessions"]["file"] = "yoochoose-clicks.csv"
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'raw' / 'yoochoose-clicks.csv'}: missing raw file")):
        ingest(tmp_path, overrides)


@pytest.mark.parametrize("which", ["test", "train"])
def test_an_empty_split_is_explained(tmp_path, which):
    late = [("04T10:00:00.000", N), ("04T10:01:00.000", N), ("04T10:02:00.000", N)]
    if which == "test":  # the only session after the cut clicks an item no training session has
        sessions, message = {1: RULES[1], 2: RULES[2], 3: RULES[3], 20: late}, "no session after the cut keeps 2"
    else:  # every session ends within the last day
        sessions, message = {14: RULES[14], 15: RULES[15], 17: RULES[17], 20: late}, "no session ends before the cut"
    with pytest.raises(DataError, match=rf"yoochoose-clicks.dat: {message}.*ingest.sessions.test_days"):
        ingest(tmp_path, write_clicks(tmp_path / "raw", sessions))


def test_a_diginetica_file_with_another_header_names_the_missing_columns(tmp_path):
    overrides = write(tmp_path / "raw", "diginetica", n_sessions=30)
    path = tmp_path / "raw" / "train-item-views.csv"
    text = path.read_text().splitlines()
    path.write_text("\n".join(["session_id;user_id;item_id;timeframe;eventdate", *text[1:]]) + "\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['sessionId', 'itemId'\]"):
        ingest(tmp_path, overrides)
