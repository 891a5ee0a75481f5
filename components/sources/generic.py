"""``source: generic``: one CSV or Parquet log of events whose columns' roles are declared in ``ingest.generic``.

File: ``ingest.generic.file`` in ``raw_dir``: a Parquet file (by its suffix) or
a comma-separated text file with a header line (UTF-8, ``"``-quoted fields;
``.csv.gz`` works too), one row per event: an export of the user's own logs,
so there is no download page. Columns the params do not name are ignored. The
params give each column a role, much as RecBole's atomic ``.inter`` files map
arbitrary field names onto its USER_ID / ITEM_ID / TIME fields by
configuration (RecBole, Zhao et al. 2021, "Running New Dataset"), and
DeepCTR / torch-rechub declare sparse and dense feature columns in code:

- ``user`` / ``item``: the ids. Integers or text; their type is kept (a
  Parquet column's own type; in a CSV file a column whose every value is an
  integer written without leading zeros is read as integers, otherwise as
  text, so ``"007"`` stays ``"007"``). The same rule gives categorical
  features their type; vocabularies work with either.
- ``time``: the event time: integers (epoch seconds, which the behaviour
  models bucket into time gaps, or any integer order) or timestamps: a
  Parquet TIMESTAMP / DATE column, or ISO 8601 text (``2024-05-01
  10:00:00``, ``2024-05-01T10:00:00+02:00``, ``2024-05-01``; UTC without an
  offset), turned into epoch seconds (floored). A text column holds integers
  or timestamps by what most of its first 1,000 values are; a value of the
  other kind is a malformed row. Without ``time``, an event's time is its
  line: the file's order.
- ``labels``: binary 0/1 columns (click, purchase, ...), in funnel order if
  they form one; ``values``: real-valued columns (dwell time, amount), the
  regression tasks of ``train_mtl``.
- ``user_features`` / ``item_features`` / ``context_features``: column →
  ``categorical`` | ``numeric`` (standardised; missing values are allowed).

Preparation, all in DuckDB SQL:

- Checks first: a column given in params and missing from the file names the
  file, the column and the params key; a column named in two roles, or a
  label, value or feature taking the name of a column ingest makes itself
  (``user_id``, ``item_id``, ``ts``, ``hist``, ``hist_ts``, ``split``,
  ``line``, the behaviour columns ``hist_category`` ...), is refused naming
  the keys; so is such a name that is not a plain identifier (letters,
  digits, ``_``: it names vocabulary files and model parameters). An item
  feature may be called ``category``: the behaviour models (DIN, DIEN, SIM,
  ...) read that one.
- ``load_file`` reads and type-checks every row (the ids, time, labels and
  values are required; features may be empty). A label that is not 0 or 1,
  or a value or numeric feature that is not a finite number, is a malformed
  row as well: it stops ingest with the file and line, or with ``bad_rows:
  skip`` is left out and counted with load_file's own skips.
- ``raw_users`` / ``raw_items``: one row per id holding, for each feature,
  the value of the id's first event in time (ts, then line) that has one.
  First, not last or most frequent: a side feature is the same for all of an
  id's rows, training and test, and the first value is, as a rule, one known
  before any test-period event (a later price or address would leak the
  future into the training rows; an id whose feature is empty until the test
  period still gets that later value everywhere). A feature that changes per
  event belongs in ``context_features``.
- ``raw_interactions`` (recall): every row (``interactions: all``) or the
  rows whose first label is 1 (``positive``: e.g. the clicks of an
  impression log); ``raw_behaviors``, the long log, is the same rows.
- ``raw_impressions`` (ranking / multi-task, when ``labels`` or ``values``
  are given): every row with its context features, labels and values.
- ``funnel``: checked, not declared: true when there are at least two labels
  and on every row each label is at most the one before it (a purchase only
  after a click). A declared funnel that the data breaks would train ESMM /
  AITM on an impossible target; a check costs one scan. The count of rows
  breaking the order is in ``meta.json`` (``preparation``).

Ingest then splits as for every source: ``ingest.recall_split``
(leave_one_out / time_ratio) over the interactions, ``ingest.ranking_split``
(time fractions) over the labelled rows, ``ingest.k_core`` on the
interactions if set.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from components.errors import DataError
from components.sources.base import (
    Categorical,
    Column,
    Numeric,
    RawTable,
    Source,
    ident,
    load_file,
    quote,
    refuse_rows,
    require_file,
)
from rechub_core.data.behaviors import (
    HIST_CATEGORY,
    HIST_DT,
    HIST_NEG,
    HIST_NEG_CATEGORY,
    LONG_CATEGORY,
    LONG_DT,
    LONG_ITEM,
)

KEY = "ingest.generic"
# columns ingest itself makes in the processed tables: a label, value or feature may not take these names
RESERVED = ("user_id", "item_id", "ts", "hist", "hist_ts", "split", "line", HIST_CATEGORY, HIST_DT, HIST_NEG,
            HIST_NEG_CATEGORY, LONG_ITEM, LONG_CATEGORY, LONG_DT)
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT")
TIME_SAMPLE = 1000  # first values of a text time column that decide between integers and timestamps
NAME = "[A-Za-z_][A-Za-z0-9_]*"  # a label, value or feature name
CANONICAL_INT = "-?(0|[1-9][0-9]{0,17})"  # an integer as a program writes it: no plus sign, no leading zero, fits BIGINT


def _roles(g) -> list[tuple[str, str]]:
    """(params key, column) of every column the params name, in a fixed order."""
    roles = [("user", g.user), ("item", g.item)]
    if g.time is not None:
        roles.append(("time", g.time))
    roles += [("labels", c) for c in g.labels] + [("values", c) for c in g.values]
    for key in ("user_features", "item_features", "context_features"):
        roles += [(key, c) for c in getattr(g, key)]
    return roles


def _check_roles(g) -> None:
    """One role per column, and no output column taking a name ingest makes; ``positive`` needs a label and
    context features need labelled rows to ride on."""
    keys: dict[str, list[str]] = {}
    for key, col in _roles(g):  # DuckDB matches names without regard to case: so do these checks
        keys.setdefault(col.lower(), []).append(f"{KEY}.{key}")
    twice = {col: ks for col, ks in keys.items() if len(ks) > 1}
    if twice:
        col, ks = next(iter(twice.items()))
        raise DataError(f"{KEY}: column {col!r} is named in {ks}; each column takes one role "
                        f"({len(twice)} such column(s): {list(twice)})")
    for key, col in _roles(g):  # the ids and time are renamed; the others keep their names
        if key in ("user", "item", "time"):
            continue
        if col.lower() in RESERVED:
            raise DataError(f"{KEY}.{key}: column {col!r} takes the name of a column ingest makes ({list(RESERVED)}); "
                            "rename it in the file")
        if not re.fullmatch(NAME, col):  # it names tables, vocabulary files and model parameters downstream
            raise DataError(f"{KEY}.{key}: column {col!r} keeps its name as a feature or label, which must be letters, "
                            "digits and underscores, not starting with a digit; rename it in the file")
    if g.interactions == "positive" and not g.labels:
        raise DataError(f"{KEY}.interactions: positive keeps the rows whose first label is 1, but {KEY}.labels is "
                        "empty; name the label columns or use interactions: all")
    if g.context_features and not (g.labels or g.values):
        raise DataError(f"{KEY}.context_features: {list(g.context_features)} describe the labelled rows of ranking, "
                        f"but {KEY}.labels and {KEY}.values are empty; name the labels or drop the context features")


def _scan(path: Path) -> str:
    """The file as a DuckDB table function, every CSV field as text (malformed lines left out: a peek only)."""
    if path.suffix == ".parquet":
        return f"read_parquet({quote(path)})"
    return (f"read_csv({quote(path)}, header = true, delim = ',', quote = '\"', encoding = 'utf-8', "
            "all_varchar = true, ignore_errors = true)")


def _file_columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Column → DuckDB type of the file (text for every CSV column)."""
    try:
        return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {_scan(path)}").fetchall()}
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None


def _time_type(con: duckdb.DuckDBPyConnection, path: Path, col: str, file_type: str) -> str:
    """BIGINT (integer times) or TIMESTAMPTZ (timestamps, dates, ISO text) for the time column."""
    if file_type in INTEGER_TYPES or file_type in ("FLOAT", "DOUBLE") or file_type.startswith("DECIMAL"):
        return "BIGINT"  # a fractional number is a malformed row
    if file_type.startswith("TIMESTAMP") or file_type == "DATE":
        return "TIMESTAMPTZ"
    if file_type != "VARCHAR":
        raise DataError(f"{path}: column {col!r} ({KEY}.time) is {file_type}; expected integers or timestamps")
    c = ident(col)
    ints, stamps = con.execute(
        f"SELECT count(TRY_CAST(c AS BIGINT)), count(TRY_CAST(c AS TIMESTAMPTZ)) "
        f"FROM (SELECT {c} AS c FROM {_scan(path)} WHERE {c} IS NOT NULL LIMIT {TIME_SAMPLE})").fetchone()
    return "TIMESTAMPTZ" if stamps > ints else "BIGINT"


def _key_type(file_type: str) -> str:
    """The load type of an id or categorical column of a Parquet file: integers as BIGINT, the rest as text."""
    return "BIGINT" if file_type in INTEGER_TYPES else "VARCHAR"


def _check_values(con: duckdb.DuckDBPyConnection, spec: RawTable, path: Path, g, bad_rows: str,
                  skipped: dict | None) -> dict | None:
    """Labels must be 0 or 1, values and numeric features finite: fail naming file, column and line, or (skip)
    delete such rows of ``raw_events`` and add them to load_file's record of ``path``."""
    checks = [(c, f"{ident(c)} NOT IN (0, 1)", "not 0 or 1", "labels") for c in g.labels]
    numbers = [("values", c) for c in g.values]
    numbers += [(k, c) for k in ("user_features", "item_features", "context_features")
                for c, kind in getattr(g, k).items() if kind == "numeric"]
    checks += [(c, f"NOT isfinite({ident(c)})", "not a finite number", k) for k, c in numbers]
    for col, cond, why, key in checks:  # a row counts under the first check it fails
        skipped = refuse_rows(con, spec, "raw_events", path, cond, col, why, bad_rows, skipped, f" ({KEY}.{key})")
    return skipped


def _integer_columns(con: duckdb.DuckDBPyConnection, columns: list[str]) -> list[str]:
    """Of the loaded text ``columns`` of a CSV file, those whose every value is an integer written plainly."""
    if not columns:
        return []
    tests = ", ".join(f"coalesce(bool_and(regexp_full_match({ident(c)}, '{CANONICAL_INT}')), false)" for c in columns)
    flags = con.execute(f"SELECT {tests} FROM raw_events").fetchone()
    return [c for c, is_int in zip(columns, flags) if is_int]


def _spec(kind: str, name: str) -> Column:
    return Categorical(name) if kind == "categorical" else Numeric(name)


def read(con: duckdb.DuckDBPyConnection, params, raw_dir: Path) -> Source:
    g = params.generic
    _check_roles(g)
    path = require_file(raw_dir, g.file, f"{KEY}.file: the event log, a CSV file with a header or a Parquet file")
    present = _file_columns(con, path)
    for key, col in _roles(g):
        if col not in present:
            raise DataError(f"{path}: missing column {col!r} ({KEY}.{key}); the file has {list(present)}")
    parquet = path.suffix == ".parquet"
    features = {**g.user_features, **g.item_features, **g.context_features}
    keys = [g.user, g.item, *(c for c, kind in features.items() if kind == "categorical")]

    columns = {c: (_key_type(present[c]) if parquet else "VARCHAR") for c in keys}
    time_type = None
    if g.time is not None:
        time_type = _time_type(con, path, g.time, present[g.time])
        columns[g.time] = time_type
    columns.update({c: "INTEGER" for c in g.labels})
    columns.update({c: "DOUBLE" for c in g.values})
    columns.update({c: "DOUBLE" for c, kind in features.items() if kind == "numeric"})
    required = (g.user, g.item, *((g.time,) if g.time else ()), *g.labels, *g.values)
    spec = RawTable("events", columns, required)

    zone = con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
    con.execute("SET TimeZone = 'UTC'")  # ISO text without an offset, and Parquet's plain TIMESTAMPs, are UTC
    try:
        skipped = load_file(con, path, spec, bad_rows=params.bad_rows, into="raw_events")
        skipped = _check_values(con, spec, path, g, params.bad_rows, skipped)

        # CSV ids and categories: integers where every value is one, else text
        text_keys = [c for c in keys if columns[c] == "VARCHAR"]
        integer = set() if parquet else set(_integer_columns(con, text_keys))

        def key(col: str, name: str) -> str:
            return f"CAST({ident(col)} AS BIGINT) AS {ident(name)}" if col in integer else f"{ident(col)} AS {ident(name)}"

        if g.time is None:
            ts = "line"
        elif time_type == "BIGINT":
            ts = ident(g.time)
        else:
            ts = f"CAST(floor(epoch({ident(g.time)})) AS BIGINT)"
        selects = [key(g.user, "user_id"), key(g.item, "item_id"), f"{ts} AS ts"]
        selects += [key(c, c) if kind == "categorical" else ident(c) for c, kind in features.items()]
        selects += [ident(c) for c in (*g.labels, *g.values)]
        con.execute(f"CREATE OR REPLACE TABLE events AS SELECT {', '.join(selects)}, line FROM raw_events")
    finally:
        con.execute(f"SET TimeZone = {quote(zone)}")
    con.execute("DROP TABLE raw_events")

    for table, id_col, feats in (("raw_users", "user_id", g.user_features), ("raw_items", "item_id", g.item_features)):
        firsts = "".join(f", first({ident(c)} ORDER BY ts, line) FILTER (WHERE {ident(c)} IS NOT NULL) AS {ident(c)}"
                         for c in feats)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {id_col}{firsts}, "
                    f"first(line ORDER BY ts, line) AS line FROM events GROUP BY {id_col}")

    positive = f"WHERE {ident(g.labels[0])} = 1" if g.interactions == "positive" else ""
    con.execute(f"CREATE OR REPLACE TABLE raw_interactions AS SELECT user_id, item_id, ts, line FROM events {positive}")
    n_interactions = con.execute("SELECT count(*) FROM raw_interactions").fetchone()[0]
    if n_interactions == 0:
        raise DataError(f"{path}: no row has {g.labels[0]} = 1, so recall has no interactions "
                        f"({KEY}.interactions: positive)")
    con.execute("CREATE OR REPLACE TABLE raw_behaviors AS SELECT * FROM raw_interactions")
    tables = {"users", "items", "interactions", "behaviors"}

    n_rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    notes = {"rows": n_rows, "interactions": n_interactions,
             "time": "line" if g.time is None else ("integer" if time_type == "BIGINT" else "timestamp, as epoch seconds"),
             "id_types": {"user_id": "integer" if g.user in integer or columns[g.user] == "BIGINT" else "text",
                          "item_id": "integer" if g.item in integer or columns[g.item] == "BIGINT" else "text"}}
    funnel = False
    if g.labels or g.values:
        kept = [ident(c) for c in (*g.context_features, *g.labels, *g.values)]
        con.execute(f"CREATE OR REPLACE TABLE raw_impressions AS SELECT user_id, item_id, ts, "
                    f"{', '.join(kept)}, line FROM events")
        tables.add("impressions")
        if len(g.labels) >= 2:
            breaks = " OR ".join(f"{ident(b)} > {ident(a)}" for a, b in zip(g.labels, g.labels[1:]))
            notes["funnel_breaks"] = con.execute(f"SELECT count(*) FROM events WHERE {breaks}").fetchone()[0]
            funnel = notes["funnel_breaks"] == 0
    con.execute("DROP TABLE events")

    return Source(
        name="generic",
        tables=tables,
        files={t: path for t in tables},
        user=tuple(_spec(kind, c) for c, kind in g.user_features.items()),
        item=tuple(_spec(kind, c) for c, kind in g.item_features.items()),
        context=tuple(_spec(kind, c) for c, kind in g.context_features.items()),
        labels=tuple(g.labels),
        funnel=funnel,
        values=tuple(g.values),
        skipped=[skipped] if skipped is not None else [],
        notes=notes,
    )
