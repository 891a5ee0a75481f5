"""Ingest: raw files → encoded, split Parquet tables, vocabularies and the feature schema.

``ingest.source`` picks a reader (``components.sources``): rechub's own five
files (``files``; ``synthetic`` generates them first), MovieLens, SASRec /
S3-Rec sequence files, Criteo, Census-Income (KDD), YOOCHOOSE / DIGINETICA
sessions, or any CSV / Parquet log with its column roles in params. A reader
turns its files into canonical tables (``components.sources.base``); the
encoding, history building and splitting below is the same for every
source, and all of it is DuckDB SQL over a database file beside the output,
so logs larger than memory spill to disk rather than fail. Writes into
``processed`` (atomically, whole) what the source provides:

- ``vocab/<feature>.parquet``: raw value → contiguous id (0 = unknown/padding;
  1 = out of vocabulary for a feature with a ``min_count``)
- ``users.parquet`` / ``items.parquet``: encoded side features, one row per id
- ``recall_train.parquet`` / ``recall_test.parquet`` (sources with
  interactions): each row has the user's features, the ``hist`` of the
  previous items, their times ``hist_ts`` and the target ``item_id``; the
  test rows by ``ingest.recall_split`` (leave-one-out: each user's last event;
  time_ratio: every event after a time cut) or by the source's own split
  (sessions: the last days' sessions, every prefix)
- ``ranking_{train,valid,test}.parquet`` (sources with labelled rows): split
  by time (``ingest.ranking_split``) or by the source's given files, with the
  user and item features, ``hist`` before the row, the context features, the
  binary labels and the real-valued ones (regression targets for train_mtl)
- ``behaviors.parquet``: the long behaviour log ``(user_id, item_id,
  category, ts)`` sorted by user then time (sources whose ranking rows have
  users, items with a category, and a log)
- ``schema.json`` (feature schema) and ``meta.json`` (row counts, params, what
  the source provides, what its preparation did, and the malformed rows left
  out under ``bad_rows: skip``, per file)

Ranking rows gain their behaviour columns when loaded
(``rechub_core.data.behaviors``): each history item's ``hist_category`` and
time before the impression ``hist_dt``, a negative next item per history item
``hist_neg`` (DIEN's auxiliary loss), and the ``long_*`` window of the long
log before the impression.

A malformed raw row (a text line with the wrong number of fields or bytes
not in the file's encoding, a value that does not cast, an empty required
value) stops ingest with its file and line, or with ``bad_rows: skip`` is
counted and left out (``components.sources.base.load_file``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from components.errors import DataError
from components.io import atomic_dir, write_json
from components.params import IngestParams, section_dict
from components.sources import reader
from components.sources.base import Categorical, Column, Source, ident, quote
from rechub_core.data.behaviors import (
    HIST_CATEGORY,
    HIST_DT,
    HIST_NEG,
    HIST_NEG_CATEGORY,
    LONG_CATEGORY,
    LONG_DT,
    LONG_ITEM,
    TIME_BUCKETS,
)
from rechub_core.features import DenseFeature, Feature, Schema, SequenceFeature, SparseFeature

CATEGORY = "category"  # the item feature behaviour models read (hist_category, the long log's categories)


def _check_references(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Every logged user and item must exist in the users / items tables."""
    for log in ("interactions", "impressions", "behaviors"):
        if not source.has(log):
            continue
        columns = {r[0] for r in con.execute(f"DESCRIBE raw_{log}").fetchall()}
        for key, table in (("user_id", "users"), ("item_id", "items")):
            if key not in columns or not source.has(table):
                continue
            bad = con.execute(
                f"SELECT l.line, l.{key} FROM raw_{log} l ANTI JOIN raw_{table} t USING ({key}) "
                "ORDER BY l.line LIMIT 1"
            ).fetchone()
            if bad is not None:
                raise DataError(f"{source.files[log]}: column {key!r} line {bad[0]}: {bad[1]} is not in the "
                                f"{table} file ({source.files.get(table, 'derived from the logs')})")


def k_core(con: duckdb.DuckDBPyConnection, k: int, source: Source) -> dict:
    """Drop interactions of users and items with fewer than ``k`` of them, repeated until none is left; then
    the users and items outside the core leave the data set: their side-table rows, and the labelled rows
    and behaviours that name them (as the papers' k-core data sets hold none of them)."""
    rounds, removed = 0, 0
    while True:
        n = con.execute(f"""
            DELETE FROM raw_interactions
            WHERE user_id IN (SELECT user_id FROM raw_interactions GROUP BY user_id HAVING count(*) < {k})
               OR item_id IN (SELECT item_id FROM raw_interactions GROUP BY item_id HAVING count(*) < {k})""").fetchone()[0]
        if n == 0:
            break
        rounds, removed = rounds + 1, removed + n
    left = con.execute("SELECT count(*) FROM raw_interactions").fetchone()[0]
    if left == 0:
        raise DataError(f"ingest.k_core: {k}: no interaction is left; lower k_core")
    outside = {}
    for table in ("users", "items", "impressions", "behaviors"):
        if not source.has(table):
            continue
        columns = {r[0] for r in con.execute(f"DESCRIBE raw_{table}").fetchall()}
        keys = [key for key in ("user_id", "item_id") if key in columns]
        if keys:
            outside[table] = con.execute(f"DELETE FROM raw_{table} WHERE " + " OR ".join(
                f"{key} NOT IN (SELECT DISTINCT {key} FROM raw_interactions)" for key in keys)).fetchone()[0]
    return {"k": k, "rounds": rounds, "removed_interactions": removed,
            **{f"removed_{table}": n for table, n in outside.items()}}


class _Encoder:
    """Vocabularies and the SQL expressions that encode a table's columns, with the schema features they make."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.vocabularies: list[str] = []
        self.oov: dict[str, int] = {}

    def size(self, name: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM vocab_{name}").fetchone()[0] + 1 + (name in self.oov)

    def vocabulary(self, name: str, rows: str, min_count: int = 1) -> None:
        """``vocab_<name>``: the distinct non-null values of column ``name`` in ``rows`` (a table or
        subquery), sorted, numbered 1.. (from 2 when rarer values share the OOV id 1)."""
        col = ident(name)
        if min_count <= 1:
            values = f"SELECT DISTINCT {col} FROM {rows} WHERE {col} IS NOT NULL"
            first = 0
        else:
            values = f"SELECT {col} FROM {rows} WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) >= {min_count}"
            first = 1
            self.oov[name] = 1
        self.con.execute(f"CREATE TABLE vocab_{name} AS SELECT {col} AS raw, {first} + row_number() OVER "
                         f"(ORDER BY {col}) AS id FROM ({values})")
        self.vocabularies.append(name)

    def columns(self, specs: tuple[Column, ...], alias: str, vocab_rows: str, stats_rows: str):
        """Encode ``specs`` of the table read as ``alias``: returns (select expressions, joins, the stats
        CTE or None, features); vocabularies come from ``vocab_rows``, means and deviations from ``stats_rows``."""
        selects, joins, stats, features = [], [], [], []
        for spec in specs:
            col = f"{alias}.{ident(spec.name)}"
            if isinstance(spec, Categorical):
                self.vocabulary(spec.name, vocab_rows, spec.min_count)
                v = f"v_{spec.name}"
                joins.append(f"LEFT JOIN vocab_{spec.name} {v} ON {v}.raw = {col}")
                unseen = 1 if spec.min_count > 1 else 0
                selects.append(f"coalesce({v}.id, 0) AS {ident(spec.name)}" if not unseen else
                               f"CASE WHEN {col} IS NULL THEN 0 ELSE coalesce({v}.id, 1) END AS {ident(spec.name)}")
                features.append(SparseFeature(spec.name, self.size(spec.name)))
                continue
            if spec.bucket is not None:
                if spec.edges:
                    cases = " ".join(f"WHEN {col} < {edge} THEN {i + 1}" for i, edge in enumerate(spec.edges))
                    selects.append(f"CASE WHEN {col} IS NULL THEN 0 {cases} ELSE {len(spec.edges) + 1} END "
                                   f"AS {ident(spec.bucket)}")
                    features.append(SparseFeature(spec.bucket, len(spec.edges) + 2))
                else:
                    selects.append(f"CASE WHEN {col} IS NULL THEN 0 ELSE ntile({spec.buckets}) OVER "
                                   f"(PARTITION BY {col} IS NULL ORDER BY {col}) END AS {ident(spec.bucket)}")
                    features.append(SparseFeature(spec.bucket, spec.buckets + 1))
            if spec.dense:
                def value(c: str, log: bool = spec.log) -> str:
                    return f"ln(1 + greatest({c}, 0))" if log else c
                raw = ident(spec.name)
                stats.append(f"avg({value(raw)}) AS {ident('mu_' + spec.name)}, "
                             f"coalesce(nullif(stddev_pop({value(raw)}), 0), 1) AS {ident('sd_' + spec.name)}")
                selects.append(f"CAST(coalesce(({value(col)} - stats.{ident('mu_' + spec.name)}) / "
                               f"stats.{ident('sd_' + spec.name)}, 0) AS FLOAT) AS {raw}")
                features.append(DenseFeature(spec.name))
        stats_cte = f"(SELECT {', '.join(stats)} FROM {stats_rows})" if stats else None
        return selects, joins, stats_cte, features


def _side_table(enc: _Encoder, table: str, key: str, specs: tuple[Column, ...]) -> list[Feature]:
    """``users`` / ``items``: the first row per id of ``raw_<table>``, encoded; returns its features."""
    con = enc.con
    con.execute(f"CREATE TABLE vocab_{key} AS SELECT {key} AS raw, row_number() OVER (ORDER BY {key}) AS id "
                f"FROM (SELECT DISTINCT {key} FROM raw_{table})")
    enc.vocabularies.append(key)
    con.execute(f"CREATE TABLE first_{table} AS SELECT * FROM raw_{table} "
                f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY line) = 1")
    selects, joins, stats, features = enc.columns(specs, "t", vocab_rows=f"raw_{table}", stats_rows=f"first_{table}")
    selects = "".join(f",\n               {s}" for s in selects)
    con.execute(f"""
        CREATE TABLE {table} AS
        SELECT v.id AS {key}{selects}
        FROM first_{table} t {'CROSS JOIN ' + stats + ' stats' if stats else ''}
        JOIN vocab_{key} v ON v.raw = t.{key}
        {' '.join(joins)}
        ORDER BY {key}""")
    return features


def _events(con: duckdb.DuckDBPyConnection, source: Source, history_len: int) -> None:
    """``events``: each interaction with the ids of up to ``history_len`` earlier items of its user."""
    split = ", x.split" if source.recall_split == "given" else ""
    con.execute(f"""
        CREATE TABLE events AS
        SELECT vu.id AS user_id, vi.id AS item_id, x.ts, x.line{split},
               list(vi.id) OVER w_before AS hist,
               list(x.ts) OVER w_before AS hist_ts_before,
               list(vi.id) OVER w_upto AS hist_upto,
               list(x.ts) OVER w_upto AS hist_ts_upto,
               row_number() OVER (PARTITION BY vu.id ORDER BY x.ts DESC, x.line DESC) AS from_end,
               count(*) OVER (PARTITION BY vu.id) AS n_user
        FROM raw_interactions x
        JOIN vocab_user_id vu ON vu.raw = x.user_id
        JOIN vocab_item_id vi ON vi.raw = x.item_id
        WINDOW w_before AS (PARTITION BY vu.id ORDER BY x.ts, x.line
                            ROWS BETWEEN {history_len} PRECEDING AND 1 PRECEDING),
               w_upto AS (PARTITION BY vu.id ORDER BY x.ts, x.line
                          ROWS BETWEEN {history_len - 1} PRECEDING AND CURRENT ROW)""")


def _recall_splits(con: duckdb.DuckDBPyConnection, source: Source, params: IngestParams, user_cols: str) -> None:
    """``recall_train`` / ``recall_test`` from ``events``, by the source's or params' split."""
    if source.recall_split == "given":  # sessions: every prefix predicts the next item (the papers' augmentation)
        test = "e.split = 'test' AND e.hist IS NOT NULL"  # a session's first event has nothing to go on
        train = "e.split = 'train' AND e.hist IS NOT NULL"
    elif params.recall_split.name == "time_ratio":
        cut = con.execute(f"SELECT quantile_disc(ts, {1 - params.recall_split.test_fraction}) FROM events").fetchone()[0]
        # a test row needs a user with training events: their items are its history and its exclusions
        con.execute(f"CREATE TABLE trained_users AS SELECT DISTINCT user_id FROM events WHERE ts < {cut}")
        train = f"e.ts < {cut}"
        test = f"e.ts >= {cut} AND e.user_id IN (SELECT user_id FROM trained_users)"
    else:  # leave-one-out: each user's last event, if they have another before it
        test = "e.from_end = 1 AND e.n_user >= 2"
        train = f"NOT ({test})"
    recall_cols = (f"e.user_id{user_cols}, coalesce(e.hist, []) AS hist, "
                   "coalesce(e.hist_ts_before, []) AS hist_ts, e.item_id, e.ts")  # hist_ts: the history's times
    users = "JOIN users u USING (user_id)" if user_cols else ""
    for name, cond in (("recall_train", train), ("recall_test", test)):
        con.execute(f"CREATE TABLE {name} AS SELECT {recall_cols} FROM events e {users} "
                    f"WHERE {cond} ORDER BY e.user_id, e.ts, e.line")


def _ranking(enc: _Encoder, source: Source, params: IngestParams, parts: dict) -> list[Feature]:
    """``ranking``: the labelled rows with their features and split; returns the context features."""
    con = enc.con
    split = params.ranking_split
    if source.ranking_split == "given":
        con.execute("CREATE TABLE imp AS SELECT * FROM raw_impressions")
    else:
        con.execute(f"""
            CREATE TABLE imp AS
            WITH cuts AS (SELECT quantile_disc(ts, {1 - split.valid_fraction - split.test_fraction}) AS t_valid,
                                 quantile_disc(ts, {1 - split.test_fraction}) AS t_test FROM raw_impressions)
            SELECT m.*, CASE WHEN m.ts >= cuts.t_test THEN 'test' WHEN m.ts >= cuts.t_valid THEN 'valid'
                             ELSE 'train' END AS split
            FROM raw_impressions m CROSS JOIN cuts""")
    # context vocabularies and statistics from the training rows only
    con.execute("CREATE VIEW imp_train AS SELECT * FROM imp WHERE split = 'train'")
    selects, joins, stats, features = enc.columns(source.context, "m", vocab_rows="imp_train", stats_rows="imp_train")
    cols, froms = [], ["imp m"]
    if parts["users"]:
        cols.append(f"vu.id AS user_id{parts['user_cols']}")
        froms.append("JOIN vocab_user_id vu ON vu.raw = m.user_id JOIN users u ON u.user_id = vu.id")
        if parts["events"]:
            cols.append("coalesce(h.hist_upto, []) AS hist, coalesce(h.hist_ts_upto, []) AS hist_ts")
            froms.append("""ASOF LEFT JOIN (  -- of events sharing a timestamp, the last one carries the fullest history
                SELECT * FROM events QUALIFY row_number() OVER (PARTITION BY user_id, ts ORDER BY line DESC) = 1
            ) h ON h.user_id = vu.id AND m.ts > h.ts""")
    if parts["items"]:
        cols.append(f"vi.id AS item_id{parts['item_cols']}")
        froms.append("JOIN vocab_item_id vi ON vi.raw = m.item_id JOIN items i ON i.item_id = vi.id")
    cols += selects
    cols.append("m.ts")
    cols += [f"m.{ident(c)}" for c in source.labels]
    cols += [f"CAST(m.{ident(c)} AS FLOAT) AS {ident(c)}" for c in source.values]
    cols += ["m.line", "m.split"]
    if stats:
        froms.append(f"CROSS JOIN {stats} stats")
    con.execute(f"CREATE TABLE ranking AS SELECT {', '.join(cols)} FROM {' '.join(froms + joins)}")
    return features


def _behaviors(con: duckdb.DuckDBPyConnection) -> None:
    """The long behaviour log, sorted as ``rechub_core.data.behaviors.BehaviorLog`` needs it."""
    con.execute(f"""
        CREATE TABLE behaviors AS
        SELECT vu.id AS user_id, vi.id AS item_id, it.{CATEGORY}, b.ts
        FROM raw_behaviors b
        JOIN vocab_user_id vu ON vu.raw = b.user_id
        JOIN vocab_item_id vi ON vi.raw = b.item_id
        JOIN items it ON it.item_id = vi.id
        ORDER BY vu.id, b.ts, b.line""")


def encode(con: duckdb.DuckDBPyConnection, source: Source, params: IngestParams) -> tuple[Schema, _Encoder, dict]:
    """Every table the source provides, encoded as tables of the scratch database; returns the schema, the encoder
    (its vocabularies) and which outputs exist."""
    enc = _Encoder(con)
    users, items = source.has("users"), source.has("items")
    user_feats = _side_table(enc, "users", "user_id", source.user) if users else []
    item_feats = _side_table(enc, "items", "item_id", source.item) if items else []
    events = source.has("interactions") and users and items
    imp_cols = {r[0] for r in con.execute("DESCRIBE raw_impressions").fetchall()} if source.has("impressions") else set()
    parts = {
        "users": "user_id" in imp_cols and users,
        "items": "item_id" in imp_cols and items,
        "events": events,
        "user_cols": "".join(f", u.{ident(f.name)}" for f in user_feats),
        "item_cols": "".join(f", i.{ident(f.name)}" for f in item_feats),
    }
    history_len = params.history_len
    if events:
        _events(con, source, history_len)
        _recall_splits(con, source, params, parts["user_cols"])
    context = _ranking(enc, source, params, parts) if source.has("impressions") else []
    behaviour = bool(parts["users"] and parts["items"] and events and source.has("behaviors")
                     and any(f.name == CATEGORY for f in item_feats))
    if behaviour:
        _behaviors(con)

    n_items = enc.size("item_id") if items else 0
    groups: dict[str, tuple[Feature, ...]] = {}
    if users:
        user_group = [] if source.anonymous_users else [SparseFeature("user_id", enc.size("user_id"))]
        user_group += user_feats
        if events:
            user_group.append(SequenceFeature("hist", n_items, history_len, shares="item_id"))
        groups["user"] = tuple(user_group)
    if items:
        groups["item"] = (SparseFeature("item_id", n_items), *item_feats)
    if context:
        groups["context"] = tuple(context)
    if behaviour:
        n_categories = enc.size(CATEGORY)
        # ranking rows only, derived when loaded: each history item's category, and DIEN's negative next items
        groups["behavior"] = (
            SequenceFeature(HIST_CATEGORY, n_categories, history_len, shares=CATEGORY),
            SequenceFeature(HIST_DT, TIME_BUCKETS + 1, history_len),
        )
        groups["negatives"] = (
            SequenceFeature(HIST_NEG, n_items, history_len, shares="item_id"),
            SequenceFeature(HIST_NEG_CATEGORY, n_categories, history_len, shares=CATEGORY),
        )
        # cut from behaviors.parquet when ranking rows are loaded, not stored in them
        groups["long"] = (
            SequenceFeature(LONG_ITEM, n_items, params.long_history_len, shares="item_id"),
            SequenceFeature(LONG_CATEGORY, n_categories, params.long_history_len, shares=CATEGORY),
            SequenceFeature(LONG_DT, TIME_BUCKETS + 1, params.long_history_len),
        )
    schema = Schema(groups, labels=source.labels, values=source.values, funnel=source.funnel)
    made = {"recall": events, "ranking": source.has("impressions"), "behaviors": behaviour,
            "users": users, "items": items}
    return schema, enc, made


def run(params: IngestParams, *, processed: Path, root: Path = Path(".")) -> dict[str, int]:
    """Ingest raw files into ``processed``; returns row counts by table.

    A relative ``params.raw_dir`` is taken relative to the project ``root``.
    """
    raw_dir = Path(root) / params.raw_dir
    if params.source != "synthetic" and not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw data directory does not exist (ingest.raw_dir)")
    processed = Path(processed)
    processed.parent.mkdir(parents=True, exist_ok=True)
    # a database file beside the output: DuckDB spills what does not fit in memory there, and it goes with the run.
    # Every step writes plain tables of that database, not TEMP ones: DuckDB's temporary tables stayed in memory
    # (a 6 M-line Criteo file failed at memory_limit 300MB), a database table is paged out to its file
    with tempfile.TemporaryDirectory(dir=processed.parent, prefix=".ingest-") as scratch:
        con = duckdb.connect(str(Path(scratch) / "ingest.duckdb"))
        con.execute(f"SET temp_directory = {quote(Path(scratch) / 'spill')}")
        con.execute(f"SET memory_limit = {quote(params.memory_limit)}")
        try:
            return _run(con, params, raw_dir, processed)
        finally:
            con.close()


def _run(con: duckdb.DuckDBPyConnection, params: IngestParams, raw_dir: Path, processed: Path) -> dict[str, int]:
    source = reader(params.source)(con, params, raw_dir)
    for s in source.skipped:
        print(f"ingest: skipped {s['rows']} malformed row(s) of {raw_dir / s['file']}: {s['reasons']}", flush=True)
    _check_references(con, source)
    notes = dict(source.notes)
    if params.k_core > 0 and source.has("interactions"):
        notes["k_core"] = k_core(con, params.k_core, source)
    schema, enc, made = encode(con, source, params)
    counts = {}
    with atomic_dir(processed) as out:
        (out / "vocab").mkdir()
        for col in enc.vocabularies:
            target = quote(out / "vocab" / f"{col}.parquet")
            con.execute(f"COPY (SELECT * FROM vocab_{col} ORDER BY id) TO {target} (FORMAT parquet)")
        tables = {}  # DuckDB keeps a table's insertion order: sorted
        for name in ("users", "items"):
            if made[name]:
                tables[name] = name
        if made["recall"]:
            tables.update(recall_train="recall_train", recall_test="recall_test")
        if made["behaviors"]:
            tables["behaviors"] = "behaviors"
        if made["ranking"]:
            for split in ("train", "valid", "test"):
                tables[f"ranking_{split}"] = (
                    f"(SELECT * EXCLUDE (split, line) FROM ranking WHERE split = '{split}' ORDER BY ts, line)"
                )
        for name, query in tables.items():
            target = quote(out / f"{name}.parquet")
            con.execute(f"COPY {query} TO {target} (FORMAT parquet)")
            counts[name] = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        empty = [name for name, n in counts.items() if n == 0]
        if empty:
            raise DataError(f"{raw_dir}: too little data: ingest produced empty table(s) {empty}")
        (out / "schema.json").write_text(schema.to_json())
        write_json(out / "meta.json", {
            "rows": counts, "params": section_dict(params), "raw_dir": str(params.raw_dir), "source": source.name,
            "provides": {"recall": made["recall"], "ranking": made["ranking"]},
            "recall_split": source.recall_split if source.recall_split == "given" else params.recall_split.name,
            "out_of_vocabulary_id": enc.oov, "preparation": notes, "skipped_rows": source.skipped,
        })
    return counts
