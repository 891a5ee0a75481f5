"""``source: sequences``: the preprocessed sequence files released with SASRec and S3-Rec.

One file, ``sequences.file`` in ``ingest.raw_dir`` (users take it from the papers' repositories; nothing
is downloaded by rechub), holding integer ids only, space-separated:

- ``format: pairs`` — SASRec (Kang & McAuley, ICDM 2018), ``data/*.txt`` of
  https://github.com/kang205/SASRec (``ml-1m.txt``, ``Beauty.txt``, ``Steam.txt``, ``Video.txt``; also
  the ML-1M file BERT4Rec and later papers reuse): one ``user item`` pair per line, each user's lines
  in time order. The released files list a user's lines together, but nothing here relies on it: a
  user's events are ordered by their lines wherever they are in the file.
- ``format: lists`` — S3-Rec (Zhou et al., CIKM 2020), ``data/*.txt`` of
  https://github.com/RUCAIBox/CIKM2020-S3Rec, a copy of the authors' aHuiWang/CIKM2020-S3Rec
  (``Beauty.txt``, ``Sports_and_Outdoors.txt``, ``Toys_and_Games.txt``, ``Yelp.txt``, ``LastFM.txt``;
  not the ``*_sample.txt`` files of fixed negatives, which share the layout): one line per user,
  ``user item item ...`` in time order. Each line is read as one text field and split in SQL (runs
  of spaces or tabs separate ids; leading and trailing blanks are ignored); a user on several lines
  continues their sequence.

The authors already filtered these files (5-core: users and items with fewer than five events
removed, repeatedly in S3-Rec's script) and numbered users and items from 1; ingest filters no
further unless ``ingest.k_core`` asks. The files carry order only: an event's ``ts`` is its position
in its user's sequence (1, 2, ...), so histories and ingest's leave-one-out split (``recall_split:
leave_one_out``: each user's last item is the test item, the items before it its history) follow the
file's order, as the papers' own splits do. SASRec also holds out the second to last item for
validation and ranks the test item against 100 sampled items the user never interacted with (HR@10,
NDCG@10); S3-Rec ranks it against 99 (HR@1/5/10, NDCG@5/10, MRR; its ``*_sample.txt`` files fix
them, rechub draws its own) and against all items: ``evaluate`` protocols ``sampled`` and ``full``.

Canonical tables: ``raw_interactions`` only, with ``raw_users`` and ``raw_items`` of the ids the log
mentions (no features). No ranking rows and no behaviour log: the ranking and multi-task stages have
nothing to train on with this source.

Malformed lines — a non-numeric or fractional id, a ``pairs`` line without exactly two fields, a
``lists`` line with a user and no items or an empty one, bytes that are not UTF-8 — stop ingest with
the file and line, or with ``bad_rows: skip`` are counted and left out. (DuckDB passes over an empty
line of a ``pairs`` file silently.)
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from components.errors import DataError
from components.sources.base import (
    SKIPPED_LINES,
    RawFormat,
    RawTable,
    Source,
    add_skipped,
    ids_from_logs,
    load_file,
    require_file,
)

ID = "[0-9]{1,18}"  # an id: digits only (no sign, no fraction, no exponent), within BIGINT
LINE_DELIM = "\x1f"  # ASCII unit separator: never in a text file of ids, so a lists line is one field

PAIRS = RawTable("interactions", {"user_id": "BIGINT", "item_id": "BIGINT"}, ("user_id", "item_id"))
PAIRS_FORMAT = RawFormat(delim=" ", header=False, quote="", names=("user_id", "item_id"))
LISTS = RawTable("interactions", {"text": "VARCHAR"}, ("text",))
LISTS_FORMAT = RawFormat(delim=LINE_DELIM, header=False, quote="", names=("text",))


def _read_pairs(con: duckdb.DuckDBPyConnection, path: Path, bad_rows: str) -> list[dict]:
    skipped = load_file(con, path, PAIRS, PAIRS_FORMAT, bad_rows, into="seq_pairs")
    con.execute("""
        CREATE TABLE raw_interactions AS
        SELECT user_id, item_id, row_number() OVER (PARTITION BY user_id ORDER BY line) AS ts, line
        FROM seq_pairs""")
    return [skipped] if skipped else []


def _read_lists(con: duckdb.DuckDBPyConnection, path: Path, bad_rows: str) -> list[dict]:
    skipped = load_file(con, path, LISTS, LISTS_FORMAT, bad_rows, into="seq_lines")
    con.execute(r"""
        CREATE TABLE seq_tokens AS  -- pos 1: the user, 2..: the items in time order
        SELECT line, tokens[1] AS head, generate_subscripts(tokens, 1) AS pos, unnest(tokens) AS token
        FROM (SELECT line, regexp_split_to_array(trim(text, ' ' || chr(9)), '[ \t]+') AS tokens FROM seq_lines)""")
    # each malformed line once, with its first problem (a bad user id, no items, the first bad item)
    con.execute(f"""
        CREATE TABLE seq_bad AS
        SELECT line, arg_min(why, prio) AS why, arg_min(detail, prio) AS detail FROM (
            SELECT line, 0 AS prio, 'user_id: not an integer id' AS why,
                   'user id ''' || token || ''' is not an integer id' AS detail
            FROM seq_tokens WHERE pos = 1 AND NOT regexp_full_match(token, '{ID}')
            UNION ALL
            SELECT line, 1 + pos, 'item_id: not an integer id',
                   'item ' || (pos - 1) || ' ''' || token || ''' is not an integer id'
            FROM seq_tokens WHERE pos > 1 AND NOT regexp_full_match(token, '{ID}')
            UNION ALL
            SELECT line, 1, 'no items', 'a user and no items (expected "user item item ...")'
            FROM seq_tokens GROUP BY line HAVING max(pos) < 2
        ) GROUP BY line""")
    bad = con.execute("SELECT line, detail FROM seq_bad ORDER BY line LIMIT 1").fetchone()
    if bad is not None:
        if bad_rows == "fail":
            n = con.execute("SELECT count(*) FROM seq_bad").fetchone()[0]
            raise DataError(f"{path}: line {bad[0]}: {bad[1]} ({n} such lines; ingest.bad_rows: skip counts and "
                            "skips them)")
        if not con.execute("SELECT count(*) FROM seq_lines ANTI JOIN seq_bad USING (line)").fetchone()[0]:
            raise DataError(f"{path}: every line is malformed (first, line {bad[0]}: {bad[1]})")
        reasons = dict(con.execute("SELECT why, count(*) FROM seq_bad GROUP BY why ORDER BY why").fetchall())
        lines = [r[0] for r in con.execute(f"SELECT line FROM seq_bad ORDER BY line LIMIT {SKIPPED_LINES}").fetchall()]
        skipped = add_skipped(skipped, path, LISTS.name, reasons, lines)
    con.execute("""
        CREATE TABLE raw_interactions AS
        SELECT CAST(t.head AS BIGINT) AS user_id, CAST(t.token AS BIGINT) AS item_id,
               row_number() OVER (PARTITION BY CAST(t.head AS BIGINT) ORDER BY t.line, t.pos) AS ts, t.line
        FROM seq_tokens t ANTI JOIN seq_bad b USING (line)
        WHERE t.pos > 1""")
    return [skipped] if skipped else []


def read(con: duckdb.DuckDBPyConnection, params, raw_dir: Path) -> Source:
    settings = params.sequences
    what = ("SASRec's 'user item' per line" if settings.format == "pairs" else
            "S3-Rec's 'user item item ...' per line")
    path = require_file(raw_dir, settings.file, f"sequences.file, {what}")
    reader = _read_pairs if settings.format == "pairs" else _read_lists
    skipped = reader(con, path, params.bad_rows)
    ids_from_logs(con, "user_id", ["raw_interactions"])
    ids_from_logs(con, "item_id", ["raw_interactions"])
    users, items, events, longest = con.execute(
        "SELECT count(DISTINCT user_id), count(DISTINCT item_id), count(*), max(ts) FROM raw_interactions").fetchone()
    return Source(
        name="sequences",
        tables={"users", "items", "interactions"},
        files={"interactions": path},
        skipped=skipped,
        notes={"sequences": {"format": settings.format, "users": users, "items": items, "interactions": events,
                             "longest_sequence": longest}},
    )
