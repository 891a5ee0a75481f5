"""Ingest: raw files → encoded, split Parquet tables, vocabularies and the feature schema.

Reads ``users``, ``items``, ``interactions``, ``impressions`` and, if present,
``behaviors`` (a long browsing log; without one, the interactions serve as the
long behaviour log) (``.csv`` or ``.parquet``) from ``raw_dir``; with
``source: synthetic`` the built-in generator writes them there first. All cleaning, encoding, history building and
splitting is DuckDB SQL. Writes into ``processed`` (atomically, whole):

- ``vocab/<feature>.parquet``: raw value → contiguous id (0 = unknown/padding)
- ``users.parquet`` / ``items.parquet``: encoded side features, one row per id
- ``recall_train.parquet`` / ``recall_test.parquet``: leave-last-out per user;
  each row has the user's features, the ``hist`` of the previous items, their
  times ``hist_ts`` (for time-aware augmentation) and the target ``item_id``
- ``ranking_{train,valid,test}.parquet``: impressions split by time, with
  user and item features, ``hist`` before the impression and its items'
  times ``hist_ts``, the binary labels ``click`` and ``conversion``, and every
  further column of the impressions file as a real-valued label (a regression
  target for train_mtl, e.g. the built-in data's ``log_dwell``), which must be
  numeric
- ``behaviors.parquet``: the long behaviour log ``(user_id, item_id,
  category, ts)`` sorted by user then time

Ranking rows gain their behaviour columns when loaded
(``rechub_core.data.behaviors``): each history item's ``hist_category`` and
time before the impression ``hist_dt``, a negative next item per history item
``hist_neg`` (DIEN's auxiliary loss), and the ``long_*`` window of the long
log before the impression.
- ``schema.json`` (feature schema) and ``meta.json`` (row counts, params,
  and the malformed rows left out under ``bad_rows: skip``, per file)

A malformed raw row (a CSV line with the wrong number of fields or bytes that
are not UTF-8, a value that does not cast, an empty required value) stops
ingest with its file and line, or with ``bad_rows: skip`` is counted and left
out (``load_raw``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from components.errors import DataError
from components.io import atomic_dir, write_json
from components.params import IngestParams, section_dict
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
from rechub_core.data.synthetic import generate
from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature

SYNTHETIC_MARKER = ".rechub-synthetic"
SKIPPED_LINES = 20  # line numbers of skipped rows listed per file
AGE_EDGES = (25, 35, 45, 55)
PRICE_BUCKETS = 5


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: dict[str, str]  # column → DuckDB type it must cast to
    required: tuple[str, ...]  # columns that may not be null
    optional: bool = False  # the file may be absent
    extra: str | None = None  # the DuckDB type every further column must cast to (kept, required); None: ignored
    reserved: tuple[str, ...] = ()  # names a further column may not take (the rows it joins already have them)


RAW_TABLES = (
    RawTable("users", {"user_id": "BIGINT", "gender": "VARCHAR", "age": "INTEGER", "region": "VARCHAR"}, ("user_id",)),
    RawTable(
        "items",
        {"item_id": "BIGINT", "category": "VARCHAR", "brand": "VARCHAR", "price": "DOUBLE"},
        ("item_id",),
    ),
    RawTable("interactions", {"user_id": "BIGINT", "item_id": "BIGINT", "ts": "BIGINT"}, ("user_id", "item_id", "ts")),
    RawTable("behaviors", {"user_id": "BIGINT", "item_id": "BIGINT", "ts": "BIGINT"}, ("user_id", "item_id", "ts"), True),
    RawTable(
        "impressions",
        {"user_id": "BIGINT", "item_id": "BIGINT", "ts": "BIGINT", "click": "INTEGER", "conversion": "INTEGER"},
        ("user_id", "item_id", "ts", "click", "conversion"),
        extra="DOUBLE",  # real-valued labels
        # the ranking rows' own columns, and the behaviour columns load_ranking adds (rechub_core.data.behaviors)
        reserved=("user_id", "gender", "age", "age_bucket", "region", "hist", "hist_ts", "item_id", "category",
                  "brand", "price", "price_bucket", "ts", "click", "conversion", "split", "hist_category",
                  "hist_dt", "hist_neg", "hist_neg_category", "long_item", "long_category", "long_dt"),
    ),
)
CATEGORICAL = {"users": ("gender", "region"), "items": ("category", "brand")}


def _ident(name: str) -> str:
    """A column name as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def value_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The real-valued label columns of the loaded impressions (its columns beyond the fixed ones)."""
    fixed = {*next(t for t in RAW_TABLES if t.name == "impressions").columns, "line"}
    return [r[0] for r in con.execute("DESCRIBE raw_impressions").fetchall() if r[0] not in fixed]


def _quote(path: Path) -> str:
    """A path as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def write_synthetic(params: IngestParams, raw_dir: Path) -> None:
    """Generate the built-in data into ``raw_dir`` as CSV, refusing to overwrite foreign files."""
    if raw_dir.exists() and any(raw_dir.iterdir()) and not (raw_dir / SYNTHETIC_MARKER).exists():
        raise DataError(
            f"{raw_dir}: holds files rechub did not generate; with source: synthetic set ingest.raw_dir "
            "to an empty or generated directory"
        )
    tables = generate(params.synthetic)
    with atomic_dir(raw_dir) as tmp:
        for name in (t.name for t in RAW_TABLES):  # the logs only: not the generator's counterfactual labels
            table = tables[name]
            if name == "behaviors":  # millions of rows: Parquet is a tenth of the size and reads faster
                pq.write_table(table, tmp / f"{name}.parquet")
            else:
                pacsv.write_csv(table, tmp / f"{name}.csv")
        (tmp / SYNTHETIC_MARKER).write_text("generated by rechub ingest; safe to delete\n")


def _raw_path(raw_dir: Path, name: str) -> Path | None:
    """The raw file of table ``name``; None if there is none."""
    for suffix in (".csv", ".parquet"):
        path = raw_dir / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def _require_raw_path(raw_dir: Path, name: str) -> Path:
    path = _raw_path(raw_dir, name)
    if path is not None:
        return path
    raise DataError(f"{raw_dir / (name + '.csv')}: missing raw file (expected {name}.csv or {name}.parquet)")


def load_raw(con: duckdb.DuckDBPyConnection, raw_dir: Path, spec: RawTable, bad_rows: str = "fail") -> dict | None:
    """Load one raw file as table ``raw_<name>`` with typed columns and the file's 1-based ``line``.

    A missing column or no rows fails, naming the file. A malformed row (a CSV
    line with the wrong number of fields or bytes that are not UTF-8, a value
    that does not cast, a null in a required column) fails with the file, the
    line and the reason when ``bad_rows`` is ``"fail"``; with ``"skip"`` such
    rows are left out and returned as ``{"file", "rows", "reasons", "lines"}``
    (their count, count by reason, the first few line numbers); None if none
    was. An optional table without a file is left for the caller to stand in for.
    """
    path = _raw_path(raw_dir, spec.name)
    if path is None and spec.optional:
        return None
    path = _require_raw_path(raw_dir, spec.name)
    rejected: list[tuple[int, str, str]] = []  # (line, reason, message) of CSV lines the reader refused
    if path.suffix == ".csv":
        # the delimiter is given, not sniffed: a sniffer can read a file with a short line as one column
        source = (f"read_csv({_quote(path)}, header = true, all_varchar = true, delim = ',', store_rejects = true, "
                  f"rejects_table = 'rejects_{spec.name}', rejects_scan = 'reject_scans_{spec.name}')")
        first_line = 2  # the header is line 1
    else:
        source = f"read_parquet({_quote(path)})"
        first_line = 1
    try:
        con.execute(f"DROP TABLE IF EXISTS rejects_{spec.name}")
        con.execute(f"DROP TABLE IF EXISTS reject_scans_{spec.name}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE src_{spec.name} AS SELECT * FROM {source}")
        if path.suffix == ".csv":
            rejected = con.execute(
                f"SELECT line, lower(error_type), error_message FROM rejects_{spec.name} ORDER BY line"
            ).fetchall()
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None
    if rejected and bad_rows == "fail":
        line, _, message = rejected[0]
        more = f" ({len(rejected)} such lines; ingest.bad_rows: skip counts and skips them)"
        raise DataError(f"{path}: line {line}: {message.splitlines()[0]}{more}")
    present = [r[0] for r in con.execute(f"DESCRIBE src_{spec.name}").fetchall()]
    missing = [c for c in spec.columns if c not in present]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {present}")
    if "line" in present:
        raise DataError(f"{path}: column 'line' is reserved (ingest numbers the file's lines under that name); rename it")
    columns = dict(spec.columns)
    required = set(spec.required)
    extra = []
    if spec.extra is not None:
        extra = [c for c in present if c not in columns]
        clash = [c for c in extra if c in spec.reserved]
        if clash:
            raise DataError(
                f"{path}: column(s) {clash}: every {spec.name} column beyond {list(spec.columns)} is kept as a "
                f"label, and these names are already columns of the rows built from it; rename them"
            )
        columns.update({c: spec.extra for c in extra})
        required.update(extra)
    n = con.execute(f"SELECT count(*) FROM src_{spec.name}").fetchone()[0]
    if n == 0:
        raise DataError(f"{path}: no rows")
    if rejected:  # the reader drops a refused line: number the rows by the file's own lines
        con.execute(f"CREATE OR REPLACE TEMP TABLE refused_{spec.name} AS SELECT unnest(?::BIGINT[]) AS line",
                    [[r[0] for r in rejected]])
        numbered = (f"(SELECT s.*, n.line FROM (SELECT *, row_number() OVER () AS k FROM src_{spec.name}) s JOIN "
                    f"(SELECT line, row_number() OVER (ORDER BY line) AS k FROM range({first_line}, "
                    f"{first_line} + {n + len(rejected)}) r(line) ANTI JOIN refused_{spec.name} USING (line)) n "
                    "USING (k))")
    else:
        numbered = f"(SELECT *, row_number() OVER () - 1 + {first_line} AS line FROM src_{spec.name})"
    problems = []  # (SQL condition of a bad row, its reason)
    for name, typ in columns.items():
        col = _ident(name)
        invalid = f"TRY_CAST({col} AS {typ}) IS NULL"
        if typ in ("BIGINT", "INTEGER"):  # casting 1.5 to an integer rounds it: a fractional value is invalid too
            invalid += f" OR TRY_CAST({col} AS DOUBLE) <> TRY_CAST({col} AS {typ})"
        problems.append((f"({col} IS NOT NULL AND ({invalid}))", f"{name}: not a valid {typ.lower()}"))
        if name in required:
            problems.append((f"{col} IS NULL", f"{name}: empty"))
        if bad_rows == "skip":
            continue
        bad = con.execute(
            f"SELECT line, CAST({col} AS VARCHAR) FROM {numbered} "
            f"WHERE {col} IS NOT NULL AND ({invalid}) ORDER BY line LIMIT 1"
        ).fetchone()
        if bad is not None:
            why = (f" (every {spec.name} column beyond {list(spec.columns)} is a real-valued label that "
                   "train_mtl.tasks can name; drop the column or make it numeric)") if name in extra else ""
            raise DataError(f"{path}: column {name!r} line {bad[0]}: {bad[1]!r} is not a valid {typ.lower()}{why}")
        if name in required:
            null = con.execute(f"SELECT line FROM {numbered} WHERE {col} IS NULL ORDER BY line LIMIT 1").fetchone()
            if null is not None:
                raise DataError(f"{path}: column {name!r} line {null[0]}: empty value in a required column")
    casts = ", ".join(f"CAST({_ident(c)} AS {t}) AS {_ident(c)}" for c, t in columns.items())
    if bad_rows == "fail":  # every row passed the checks above
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{spec.name} AS SELECT {casts}, line FROM {numbered}")
        return None
    skipped = _skipped(con, path, spec.name, numbered, problems, rejected)
    any_bad = " OR ".join(cond for cond, _ in problems)
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{spec.name} AS SELECT {casts}, line FROM {numbered} "
                f"WHERE NOT ({any_bad})")
    return skipped


def _skipped(con, path: Path, name: str, numbered: str, problems: list, rejected: list) -> dict | None:
    """What ``load_raw`` left out of ``path``: count, count by reason (a row's first), first line numbers."""
    reason = "CASE " + " ".join(f"WHEN {cond} THEN '{why}'" for cond, why in problems) + " END"
    bad = con.execute(f"SELECT line, {reason} FROM {numbered} WHERE {reason} IS NOT NULL ORDER BY line").fetchall()
    rows = sorted([(line, why) for line, why, _ in rejected] + bad)
    if not rows:
        return None
    if len(rows) == con.execute(f"SELECT count(*) FROM {numbered}").fetchone()[0] + len(rejected):
        raise DataError(f"{path}: every row is malformed (first, line {rows[0][0]}: {rows[0][1]})")
    reasons: dict[str, int] = {}
    for _, why in rows:
        reasons[why] = reasons.get(why, 0) + 1
    return {"file": path.name, "table": name, "rows": len(rows), "reasons": reasons,
            "lines": [line for line, _ in rows[:SKIPPED_LINES]]}


def _check_references(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> None:
    """Every logged user and item must exist in the users / items files."""
    for log in ("interactions", "impressions", "behaviors"):
        for key, table in (("user_id", "users"), ("item_id", "items")):
            bad = con.execute(
                f"SELECT l.line, l.{key} FROM raw_{log} l ANTI JOIN raw_{table} t USING ({key}) "
                "ORDER BY l.line LIMIT 1"
            ).fetchone()
            if bad is not None:
                path = _require_raw_path(raw_dir, log)
                raise DataError(f"{path}: column {key!r} line {bad[0]}: {bad[1]} is not in the {table} file")


def _encode(con: duckdb.DuckDBPyConnection, history_len: int, split) -> None:
    """Vocabularies, encoded side tables, and the recall and ranking splits as temp tables."""
    value_names = [_ident(c) for c in value_columns(con)]
    values = "".join(f", CAST(m.{c} AS FLOAT) AS {c}" for c in value_names)
    imp_values = "".join(f", imp.{c}" for c in value_names)
    # vocabularies: ids sorted by raw value, 1..n; 0 stays unknown / padding
    con.execute("CREATE TEMP TABLE vocab_user_id AS SELECT user_id AS raw, row_number() OVER (ORDER BY user_id) AS id "
                "FROM (SELECT DISTINCT user_id FROM raw_users)")
    con.execute("CREATE TEMP TABLE vocab_item_id AS SELECT item_id AS raw, row_number() OVER (ORDER BY item_id) AS id "
                "FROM (SELECT DISTINCT item_id FROM raw_items)")
    for table, cols in CATEGORICAL.items():
        for col in cols:
            con.execute(
                f"CREATE TEMP TABLE vocab_{col} AS SELECT {col} AS raw, row_number() OVER (ORDER BY {col}) AS id "
                f"FROM (SELECT DISTINCT {col} FROM raw_{table} WHERE {col} IS NOT NULL)"
            )
    age_case = " ".join(f"WHEN u.age < {edge} THEN {i + 1}" for i, edge in enumerate(AGE_EDGES))
    con.execute(f"""
        CREATE TEMP TABLE users AS
        SELECT vu.id AS user_id,
               coalesce(vg.id, 0) AS gender,
               CASE WHEN u.age IS NULL THEN 0 {age_case} ELSE {len(AGE_EDGES) + 1} END AS age_bucket,
               coalesce(vr.id, 0) AS region
        FROM (SELECT * FROM raw_users QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY line) = 1) u
        JOIN vocab_user_id vu ON vu.raw = u.user_id
        LEFT JOIN vocab_gender vg ON vg.raw = u.gender
        LEFT JOIN vocab_region vr ON vr.raw = u.region
        ORDER BY user_id""")
    con.execute(f"""
        CREATE TEMP TABLE items AS
        WITH i AS (SELECT * FROM raw_items QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY line) = 1),
        stats AS (SELECT avg(ln(1 + price)) AS mu, coalesce(nullif(stddev_pop(ln(1 + price)), 0), 1) AS sd FROM i)
        SELECT vi.id AS item_id,
               coalesce(vc.id, 0) AS category,
               coalesce(vb.id, 0) AS brand,
               CASE WHEN i.price IS NULL THEN 0
                    ELSE ntile({PRICE_BUCKETS}) OVER (PARTITION BY i.price IS NULL ORDER BY i.price) END AS price_bucket,
               CAST(coalesce((ln(1 + i.price) - stats.mu) / stats.sd, 0) AS FLOAT) AS price
        FROM i CROSS JOIN stats
        JOIN vocab_item_id vi ON vi.raw = i.item_id
        LEFT JOIN vocab_category vc ON vc.raw = i.category
        LEFT JOIN vocab_brand vb ON vb.raw = i.brand
        ORDER BY item_id""")
    # interactions with the last `history_len` earlier items of the same user
    con.execute(f"""
        CREATE TEMP TABLE events AS
        SELECT vu.id AS user_id, vi.id AS item_id, x.ts, x.line,
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
    recall_cols = ("e.user_id, u.gender, u.age_bucket, u.region, coalesce(e.hist, []) AS hist, "
                   "coalesce(e.hist_ts_before, []) AS hist_ts, e.item_id, e.ts")  # hist_ts: the history's times
    for name, cond in (("recall_train", "NOT (e.from_end = 1 AND e.n_user >= 2)"),
                       ("recall_test", "e.from_end = 1 AND e.n_user >= 2")):
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT {recall_cols} FROM events e "
                    f"JOIN users u USING (user_id) WHERE {cond} ORDER BY e.user_id, e.ts, e.line")
    # impressions: history strictly before the impression, time-ordered split
    con.execute(f"""
        CREATE TEMP TABLE ranking AS
        WITH imp AS (
            SELECT vu.id AS user_id, vi.id AS item_id, m.ts, m.line, m.click, m.conversion{values}
            FROM raw_impressions m
            JOIN vocab_user_id vu ON vu.raw = m.user_id
            JOIN vocab_item_id vi ON vi.raw = m.item_id),
        cuts AS (SELECT quantile_disc(ts, {1 - split.valid_fraction - split.test_fraction}) AS t_valid,
                        quantile_disc(ts, {1 - split.test_fraction}) AS t_test FROM imp)
        SELECT imp.user_id, u.gender, u.age_bucket, u.region, coalesce(h.hist_upto, []) AS hist, coalesce(h.hist_ts_upto, []) AS hist_ts,
               imp.item_id, i.category, i.brand, i.price_bucket, i.price,
               imp.ts, imp.click, imp.conversion{imp_values}, imp.line,
               CASE WHEN imp.ts >= cuts.t_test THEN 'test' WHEN imp.ts >= cuts.t_valid THEN 'valid'
                    ELSE 'train' END AS split
        FROM imp CROSS JOIN cuts
        ASOF LEFT JOIN (  -- of events sharing a timestamp, the last one carries the fullest history
            SELECT * FROM events QUALIFY row_number() OVER (PARTITION BY user_id, ts ORDER BY line DESC) = 1
        ) h ON h.user_id = imp.user_id AND imp.ts > h.ts
        JOIN users u ON u.user_id = imp.user_id
        JOIN items i ON i.item_id = imp.item_id""")
    # the long behaviour log, sorted as rechub_core.data.behaviors.BehaviorLog needs it
    con.execute("""
        CREATE TEMP TABLE behaviors AS
        SELECT vu.id AS user_id, vi.id AS item_id, it.category, b.ts
        FROM raw_behaviors b
        JOIN vocab_user_id vu ON vu.raw = b.user_id
        JOIN vocab_item_id vi ON vi.raw = b.item_id
        JOIN items it ON it.item_id = vi.id
        ORDER BY vu.id, b.ts, b.line""")


def build_schema(con: duckdb.DuckDBPyConnection, history_len: int, long_history_len: int) -> Schema:
    """The feature schema of the encoded tables; labels from the impressions."""

    def size(table: str) -> int:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] + 1

    n_items = size("vocab_item_id")
    user = (
        SparseFeature("user_id", size("vocab_user_id")),
        SparseFeature("gender", size("vocab_gender")),
        SparseFeature("age_bucket", len(AGE_EDGES) + 2),
        SparseFeature("region", size("vocab_region")),
        SequenceFeature("hist", n_items, history_len, shares="item_id"),
    )
    item = (
        SparseFeature("item_id", n_items),
        SparseFeature("category", size("vocab_category")),
        SparseFeature("brand", size("vocab_brand")),
        SparseFeature("price_bucket", PRICE_BUCKETS + 1),
        DenseFeature("price"),
    )
    n_categories = size("vocab_category")
    # ranking rows only, derived when loaded: each history item's category, and DIEN's negative next items
    behavior = (
        SequenceFeature(HIST_CATEGORY, n_categories, history_len, shares="category"),
        SequenceFeature(HIST_DT, TIME_BUCKETS + 1, history_len),
    )
    negatives = (
        SequenceFeature(HIST_NEG, n_items, history_len, shares="item_id"),
        SequenceFeature(HIST_NEG_CATEGORY, n_categories, history_len, shares="category"),
    )
    # cut from behaviors.parquet when ranking rows are loaded, not stored in them
    long = (
        SequenceFeature(LONG_ITEM, n_items, long_history_len, shares="item_id"),
        SequenceFeature(LONG_CATEGORY, n_categories, long_history_len, shares="category"),
        SequenceFeature(LONG_DT, TIME_BUCKETS + 1, long_history_len),
    )
    return Schema(
        {"user": user, "item": item, "behavior": behavior, "negatives": negatives, "long": long},
        labels=("click", "conversion"),
        values=tuple(value_columns(con)),
    )


def run(params: IngestParams, *, processed: Path, root: Path = Path(".")) -> dict[str, int]:
    """Ingest raw files into ``processed``; returns row counts by table.

    A relative ``params.raw_dir`` is taken relative to the project ``root``.
    """
    raw_dir = Path(root) / params.raw_dir
    if params.source == "synthetic":
        write_synthetic(params, raw_dir)
    elif not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw data directory does not exist (ingest.raw_dir)")
    con = duckdb.connect()
    skipped = [s for spec in RAW_TABLES if (s := load_raw(con, raw_dir, spec, params.bad_rows)) is not None]
    for s in skipped:
        print(f"ingest: skipped {s['rows']} malformed row(s) of {raw_dir / s['file']}: {s['reasons']}", flush=True)
    if _raw_path(raw_dir, "behaviors") is None:  # no browsing log: the interactions are the long history
        con.execute("CREATE TEMP TABLE raw_behaviors AS SELECT user_id, item_id, ts, line FROM raw_interactions")
    _check_references(con, raw_dir)
    _encode(con, params.history_len, params.ranking_split)
    counts = {}
    with atomic_dir(processed) as out:
        (out / "vocab").mkdir()
        for col in ("user_id", "item_id", *CATEGORICAL["users"], *CATEGORICAL["items"]):
            target = _quote(out / "vocab" / f"{col}.parquet")
            con.execute(f"COPY (SELECT * FROM vocab_{col} ORDER BY id) TO {target} (FORMAT parquet)")
        tables = {"users": "users", "items": "items", "recall_train": "recall_train", "recall_test": "recall_test",
                  "behaviors": "behaviors"}  # DuckDB keeps a table's insertion order: sorted
        for split in ("train", "valid", "test"):
            tables[f"ranking_{split}"] = (
                f"(SELECT * EXCLUDE (split, line) FROM ranking WHERE split = '{split}' ORDER BY ts, line)"
            )
        for name, query in tables.items():
            target = _quote(out / f"{name}.parquet")
            con.execute(f"COPY {query} TO {target} (FORMAT parquet)")
            counts[name] = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        empty = [name for name, n in counts.items() if n == 0]
        if empty:
            raise DataError(f"{raw_dir}: too little data: ingest produced empty table(s) {empty}")
        (out / "schema.json").write_text(build_schema(con, params.history_len, params.long_history_len).to_json())
        write_json(out / "meta.json", {"rows": counts, "params": section_dict(params), "raw_dir": str(params.raw_dir),
                                       "skipped_rows": skipped})
    return counts
