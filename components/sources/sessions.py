"""``source: sessions``: YOOCHOOSE and DIGINETICA click sessions, prepared as NARM and STAMP prepare them.

Files (``ingest.sessions.file`` in ``raw_dir``; nothing is downloaded):

- YOOCHOOSE (RecSys Challenge 2015): ``yoochoose-clicks.dat`` from the
  challenge's ``yoochoose-data`` archive (http://2015.recsyschallenge.com/challenge.html;
  mirrored on Kaggle as "RecSys Challenge 2015"). Comma-separated, no header:
  ``SessionID,Timestamp,ItemID,Category``, e.g.
  ``1,2014-04-07T10:51:09.277Z,214536502,0`` (ISO 8601, UTC). Use the file as
  distributed: without the header line some preprocessing scripts ask you to add.
- DIGINETICA (CIKM Cup 2016, personalized e-commerce search, track 2):
  ``train-item-views.csv`` from the cup's data (http://cikm2016.cs.iupui.edu/cikm-cup,
  also https://competitions.codalab.org/competitions/11161). Semicolon-separated
  with the header ``sessionId;userId;itemId;timeframe;eventdate`` (``eventdate``
  a date ``2016-05-09``, ``timeframe`` milliseconds that order a session's views;
  ``userId`` is mostly ``NA`` and is not read).

Neither dataset's categories are used: YOOCHOOSE's category field mixes
categories, brands and special offers ("S"), and DIGINETICA's are in another file
(``product-categories.csv``); the papers' models see item ids only.

Preparation, in the order of the reference script the session-based papers share
(SR-GNN's ``datasets/preprocess.py``, which follows NARM's ``digi_process.py``;
STAMP's ``process_rsc.py`` / ``process_cikm.py`` apply the same rules):

1. A session's time is the time of its last row in the file, before any filtering
   (YOOCHOOSE: the timestamp cut to whole seconds; DIGINETICA: the ``eventdate``,
   midnight). Within a session, YOOCHOOSE orders clicks by timestamp, ties in file
   order (the file's clicks are in time order, so this is the reference's file
   order) and DIGINETICA orders views by ``timeframe``.
2. Sessions of one row are removed.
3. Items seen fewer than ``min_item_count`` times (counted once, over the
   sessions step 2 kept) are removed from every session, then sessions left
   with fewer than 2 events are removed. The counts are not recomputed after
   that (the reference filters once, not to a fixed point).
4. Split by session time: with ``latest`` the latest session's time and
   ``cut = latest - test_days × 86400 s``, sessions before the cut train, those
   after it test, and those exactly at it are dropped (the reference's ``<`` and
   ``>``; with DIGINETICA's whole dates this drops the day ``test_days`` before the
   latest, so the test set is the last ``test_days`` dates).
5. Items of test sessions that no training session has are removed from them,
   then test sessions with fewer than 2 events are removed.
6. ``fraction`` > 1 (YOOCHOOSE's 1/64 and 1/4, NARM section 4.1): training keeps
   the most recent sessions (by session time, then file order) that hold the last
   ``floor(P / fraction)`` of the training set's ``P`` prefixes (a session of n
   events has n - 1), the session at the boundary whole. As in the reference (and
   the papers' statistics: the same 55,898 test sequences for both fractions), the
   test set is not filtered again: a test item the kept fraction lacks stays.

Mapping: each session is a user (``anonymous_users``: models get no user id
feature, only the session's history); ``raw_interactions`` holds ``user_id`` =
the session id, ``item_id``, ``ts``, ``split`` ('train' | 'test', the session's)
and ``line``; ``raw_users`` and ``raw_items`` are the ids the kept events mention.
``ts`` is epoch milliseconds: YOOCHOOSE's timestamp; DIGINETICA's session's
earliest ``eventdate`` plus ``timeframe`` (so a session's order is its timeframe
order, ties in file order, as the reference's stable sort). With
``recall_split: given`` ingest makes a ``recall_train`` row of every training
event after a session's first (``hist``: the session's earlier items; the
papers' prefix augmentation, n - 1 examples of a session of n events) and a
``recall_test`` row of every test event after a session's first, its prefix
as ``hist``: the papers' protocol scores P@20 and MRR@20 over these
prefixes. What each step removed is in ``meta.json`` ``"preparation"``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from components.errors import DataError
from components.sources.base import RawFormat, RawTable, Source, ids_from_logs, load_file, require_file

DAY = 86400  # seconds

YOOCHOOSE = (
    RawTable("clicks", {"session_id": "BIGINT", "timestamp": "TIMESTAMP", "item_id": "BIGINT"},
             ("session_id", "timestamp", "item_id")),
    RawFormat(delim=",", header=False, names=("session_id", "timestamp", "item_id", "category")),
)
DIGINETICA = (
    RawTable("item_views", {"sessionId": "BIGINT", "itemId": "BIGINT", "timeframe": "BIGINT", "eventdate": "DATE"},
             ("sessionId", "itemId", "timeframe", "eventdate")),
    RawFormat(delim=";", header=True),
)
WHAT = {
    "yoochoose": "YOOCHOOSE clicks: SessionID,Timestamp,ItemID,Category without a header",
    "diginetica": "DIGINETICA item views: sessionId;userId;itemId;timeframe;eventdate with that header",
}

# each loaded row: session, item, ts (epoch ms) and t (the time a session's last row gives it, epoch seconds)
EVENTS = {
    "yoochoose": """
        SELECT session_id, item_id, epoch_ms("timestamp") AS ts, epoch_ms("timestamp") // 1000 AS t, line
        FROM ses_raw""",
    "diginetica": """
        SELECT "sessionId" AS session_id, "itemId" AS item_id,
               epoch_ms(min(eventdate) OVER (PARTITION BY "sessionId")) + timeframe AS ts,
               CAST(epoch(eventdate) AS BIGINT) AS t, line
        FROM ses_raw""",
}


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def _shape(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(sessions, events) of ``ses_events``."""
    return con.execute("SELECT count(DISTINCT session_id), count(*) FROM ses_events").fetchone()


def _removed(before: tuple[int, int], after: tuple[int, int]) -> dict:
    return {"sessions": before[0] - after[0], "events": before[1] - after[1]}


def _remove(con: duckdb.DuckDBPyConnection, condition: str) -> None:
    """Remove the events ``condition`` selects (``ses_events`` rebuilt: faster than a DELETE of most rows)."""
    con.execute(f"CREATE OR REPLACE TABLE ses_events AS SELECT * FROM ses_events WHERE NOT ({condition})")


def _drop_short(con: duckdb.DuckDBPyConnection, where: str = "TRUE") -> None:
    """Remove the sessions (among those ``where`` selects) left with fewer than 2 events."""
    _remove(con, f"session_id IN (SELECT session_id FROM ses_events WHERE {where} "
                 "GROUP BY session_id HAVING count(*) < 2)")


def _time(con: duckdb.DuckDBPyConnection, seconds: int) -> str:
    return con.execute(f"SELECT CAST(make_timestamp(CAST({seconds} AS BIGINT) * 1000000) AS VARCHAR)").fetchone()[0]


def read(con: duckdb.DuckDBPyConnection, params, raw_dir: Path) -> Source:
    p = params.sessions
    path = require_file(raw_dir, p.file, WHAT[p.dataset])
    spec, fmt = YOOCHOOSE if p.dataset == "yoochoose" else DIGINETICA
    skipped = load_file(con, path, spec, fmt, params.bad_rows, into="ses_raw")
    notes: dict = {"dataset": p.dataset, "file": p.file}

    # 1. events and each session's time: its last row's (before any filtering)
    con.execute(f"CREATE OR REPLACE TABLE ses_events AS {EVENTS[p.dataset]}")
    con.execute("""
        CREATE OR REPLACE TABLE ses_sessions AS
        SELECT session_id, arg_max(t, line) AS t, min(line) AS first_line, count(*) AS n
        FROM ses_events GROUP BY session_id""")
    shape = _shape(con)
    notes["read"] = {"sessions": shape[0], "events": shape[1]}

    # 2. sessions of one row
    _remove(con, "session_id IN (SELECT session_id FROM ses_sessions WHERE n = 1)")
    after = _shape(con)
    notes["single_event_sessions"] = _removed(shape, after)
    shape = after
    if shape[1] == 0:
        raise DataError(f"{path}: every session has a single event; nothing to predict")

    # 3. rare items (counted once, over the sessions step 2 kept), then sessions left shorter than 2
    con.execute(f"""
        CREATE OR REPLACE TABLE ses_rare AS
        SELECT item_id FROM ses_events GROUP BY item_id HAVING count(*) < {p.min_item_count}""")
    rare_items = _count(con, "SELECT count(*) FROM ses_rare")
    rare_events = _count(con, "SELECT count(*) FROM ses_events WHERE item_id IN (SELECT item_id FROM ses_rare)")
    _remove(con, "item_id IN (SELECT item_id FROM ses_rare)")
    _drop_short(con)
    after = _shape(con)
    notes["rare_items"] = {"min_item_count": p.min_item_count, "items": rare_items, "events": rare_events}
    notes["short_after_rare_items"] = {"sessions": shape[0] - after[0], "events": shape[1] - after[1] - rare_events}
    shape = after
    if shape[1] == 0:
        raise DataError(f"{path}: no session keeps 2 events of items seen {p.min_item_count}+ times "
                        "(ingest.sessions.min_item_count)")

    # 4. split by session time: before the cut train, after it test, at it neither
    latest = _count(con, "SELECT max(t) FROM ses_sessions WHERE session_id IN (SELECT session_id FROM ses_events)")
    cut = latest - p.test_days * DAY
    con.execute(f"""
        CREATE OR REPLACE TABLE ses_split AS
        SELECT session_id, t, first_line, CASE WHEN t < {cut} THEN 'train' ELSE 'test' END AS split
        FROM ses_sessions WHERE session_id IN (SELECT session_id FROM ses_events) AND t <> {cut}""")
    _remove(con, "session_id NOT IN (SELECT session_id FROM ses_split)")
    after = _shape(con)
    notes["split"] = {"test_days": p.test_days, "latest_session": _time(con, latest), "cut": _time(con, cut),
                      "sessions_at_cut": _removed(shape, after)}
    shape = after

    # 5. test items no training session has, then test sessions shorter than 2
    test = "session_id IN (SELECT session_id FROM ses_split WHERE split = 'test')"
    con.execute(f"""
        CREATE OR REPLACE TABLE ses_train_items AS
        SELECT DISTINCT item_id FROM ses_events WHERE NOT {test}""")
    unseen = _count(con, f"SELECT count(*) FROM ses_events WHERE {test} "
                         "AND item_id NOT IN (SELECT item_id FROM ses_train_items)")
    _remove(con, f"{test} AND item_id NOT IN (SELECT item_id FROM ses_train_items)")
    notes["test_items_not_in_train"] = {"events": unseen}
    _drop_short(con, test)
    after = _shape(con)
    notes["short_test_sessions"] = {"sessions": shape[0] - after[0], "events": shape[1] - after[1] - unseen}
    shape = after

    for split, why in (("train", "no session ends before the cut"),
                       ("test", "no session after the cut keeps 2 events of items training sessions have")):
        if _count(con, f"SELECT count(*) FROM ses_split WHERE split = '{split}' AND session_id IN "
                       "(SELECT session_id FROM ses_events)") == 0:
            raise DataError(f"{path}: {why} ({notes['split']['cut']}: test_days {p.test_days} before the latest "
                            f"session, {notes['split']['latest_session']}; ingest.sessions.test_days)")

    # 6. the most recent 1/fraction of the training prefixes, whole sessions
    if p.fraction > 1:
        con.execute("""
            CREATE OR REPLACE TABLE ses_prefixes AS
            SELECT s.session_id, count(*) - 1 AS prefixes,
                   coalesce(sum(count(*) - 1) OVER (ORDER BY s.t DESC, s.first_line DESC
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS later
            FROM ses_events e JOIN ses_split s USING (session_id)
            WHERE s.split = 'train' GROUP BY s.session_id, s.t, s.first_line""")
        total = _count(con, "SELECT coalesce(sum(prefixes), 0) FROM ses_prefixes")
        keep = total // p.fraction
        if keep == 0:
            raise DataError(f"{path}: 1/{p.fraction} of the {total} training prefixes is none "
                            "(ingest.sessions.fraction)")
        _remove(con, f"session_id IN (SELECT session_id FROM ses_prefixes WHERE later >= {keep})")
        after = _shape(con)
        notes["fraction"] = {"fraction": p.fraction, "training_prefixes": total, "kept_prefixes": keep,
                             **_removed(shape, after)}

    con.execute("""
        CREATE OR REPLACE TABLE raw_interactions AS
        SELECT e.session_id AS user_id, e.item_id, e.ts, s.split, e.line
        FROM ses_events e JOIN ses_split s USING (session_id)""")
    for split in ("train", "test"):
        sessions, events, items = con.execute(
            "SELECT count(DISTINCT user_id), count(*), count(DISTINCT item_id) FROM raw_interactions "
            f"WHERE split = '{split}'").fetchone()
        notes[split] = {"sessions": sessions, "events": events, "items": items}
    ids_from_logs(con, "user_id", ["raw_interactions"])
    ids_from_logs(con, "item_id", ["raw_interactions"])
    return Source(
        name="sessions",
        tables={"users", "items", "interactions"},
        files={"interactions": path},
        anonymous_users=True,
        recall_split="given",
        skipped=[skipped] if skipped is not None else [],
        notes=notes,
    )
