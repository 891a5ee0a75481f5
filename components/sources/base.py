"""What every source reader hands ingest, and the checked loading of raw files they share.

A reader (one module per source format in this package) reads its raw files
with DuckDB into the canonical tables below, each carrying ``line``, the row's
1-based line in its file (for error messages), and returns a ``Source``
describing them. Ingest then encodes whatever the source provides the same
way for every source (``components.ingest``).

Canonical DuckDB tables (any may be absent; ``Source.tables`` lists those made):

- ``raw_users``: ``user_id`` and the user features ``Source.user`` names
- ``raw_items``: ``item_id`` and the item features ``Source.item`` names
- ``raw_interactions``: ``user_id, item_id, ts`` (recall's positive events);
  with ``Source.recall_split == "given"`` also ``split`` ('train' | 'test')
- ``raw_impressions``: the labelled rows of ranking and multi-task learning:
  ``ts``, ``user_id`` / ``item_id`` when the source has them, the context
  features ``Source.context`` names, the binary ``Source.labels`` and the
  real-valued ``Source.values``; with ``Source.ranking_split == "given"`` also
  ``split`` ('train' | 'valid' | 'test')
- ``raw_behaviors``: ``user_id, item_id, ts``, a long browsing log

``load_file`` reads one delimited or Parquet file into such a table, checking
every value's type; a malformed row (wrong field count, bytes not in the
file's encoding, a value that does not cast, an empty required value) stops
ingest with the file, line and reason, or with ``bad_rows: skip`` is left out
and counted (returned for ``meta.json`` and the validation report).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from components.errors import DataError

SKIPPED_LINES = 20  # line numbers of skipped rows listed per file
TABLES = ("users", "items", "interactions", "impressions", "behaviors")


@dataclass(frozen=True)
class Categorical:
    """A categorical column encoded as ids: ``vocab/<name>.parquet`` maps its values to 1..n (0: missing).

    With ``min_count`` > 1 (counted on the rows the vocabulary is built from: the side table, or the
    training split of the labelled rows), rarer values share the out-of-vocabulary id 1 and the kept
    values are numbered from 2; an unseen value at serving time takes id 1 as well.
    """

    name: str
    min_count: int = 1


@dataclass(frozen=True)
class Numeric:
    """A numeric column: ``dense`` gives the float feature ``name`` (``ln(1 + max(x, 0))`` first when
    ``log``, then standardised; missing: 0, the mean); ``bucket`` names a sparse feature of its
    ``buckets`` quantiles (equal-count tiles of the side table) or of ``edges`` (x < edge[0]: 1, ...),
    missing: 0. Bucketed columns of side tables only (users, items)."""

    name: str
    dense: bool = True
    log: bool = False
    bucket: str | None = None
    buckets: int = 0
    edges: tuple[float, ...] = ()


Column = Categorical | Numeric


@dataclass
class Source:
    """What a reader made, and how ingest should encode and split it."""

    name: str
    tables: set[str]  # which canonical tables exist
    files: dict[str, Path]  # canonical table -> the raw file its ``line`` numbers refer to
    user: tuple[Column, ...] = ()  # features of raw_users
    item: tuple[Column, ...] = ()  # features of raw_items
    context: tuple[Column, ...] = ()  # features of raw_impressions rows
    labels: tuple[str, ...] = ()  # binary label columns of raw_impressions
    funnel: bool = False  # labels in funnel order: each is 1 only where the one before it is (click → conversion)
    values: tuple[str, ...] = ()  # real-valued label columns of raw_impressions
    anonymous_users: bool = False  # user ids name sessions, not people: no user_id feature for models
    recall_split: Literal["leave_one_out", "time_ratio", "given"] = "leave_one_out"
    ranking_split: Literal["time", "given"] = "time"
    skipped: list[dict] = field(default_factory=list)  # malformed rows left out under bad_rows: skip
    notes: dict = field(default_factory=dict)  # what the reader's preparation did (counts), for meta.json

    def has(self, table: str) -> bool:
        return table in self.tables


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: dict[str, str]  # column → DuckDB type it must cast to
    required: tuple[str, ...]  # columns that may not be null
    optional: bool = False  # the file may be absent
    extra: str | None = None  # the DuckDB type every further column must cast to (kept, required); None: ignored
    reserved: tuple[str, ...] = ()  # names a further column may not take (the rows it joins already have them)


@dataclass(frozen=True)
class RawFormat:
    """How a text file is laid out; Parquet files (by suffix) need none of it."""

    delim: str = ","
    header: bool = True
    names: tuple[str, ...] = ()  # the fields of a file without a header, in order
    encoding: str = "utf-8"  # utf-8 | latin-1 | utf-16
    quote: str = '"'  # '' for files whose text fields hold bare quotes (MovieLens titles)


CSV = RawFormat()


def ident(name: str) -> str:
    """A column name as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote(path: Path | str) -> str:
    """A path (or any text) as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def find_raw(raw_dir: Path, name: str) -> Path | None:
    """``raw_dir/<name>.csv`` or ``.parquet``; None if neither exists."""
    for suffix in (".csv", ".parquet"):
        path = raw_dir / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def require_file(raw_dir: Path, name: str, what: str) -> Path:
    """``raw_dir/name``, or a DataError saying which file is missing and what it should hold."""
    path = Path(raw_dir) / name
    if not path.is_file():
        raise DataError(f"{path}: missing raw file ({what})")
    return path


def load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: RawTable,
    fmt: RawFormat = CSV,
    bad_rows: str = "fail",
    into: str | None = None,
) -> dict | None:
    """Load one raw file as table ``into`` (default ``raw_<spec.name>``) with typed columns and its ``line``.

    A missing column or no rows fails, naming the file. A malformed row (a text
    line with the wrong number of fields or bytes not in ``fmt.encoding``, a
    value that does not cast, a null in a required column) fails with the file,
    the line and the reason when ``bad_rows`` is ``"fail"``; with ``"skip"``
    such rows are left out and returned as ``{"file", "table", "rows",
    "reasons", "lines"}`` (their count, count by reason, the first few line
    numbers); None if none was.
    """
    into = into or f"raw_{spec.name}"
    tag = into
    rejected: list[tuple[int, str, str]] = []  # (line, reason, message) of text lines the reader refused
    if path.suffix == ".parquet":
        source = f"read_parquet({quote(path)})"
        first_line = 1
    else:
        # the delimiter is given, not sniffed: a sniffer can read a file with a short line as one column
        options = [f"header = {str(fmt.header).lower()}", f"delim = {quote(fmt.delim)}", f"quote = {quote(fmt.quote)}",
                   f"encoding = {quote(fmt.encoding)}", "store_rejects = true",
                   f"rejects_table = 'rejects_{tag}'", f"rejects_scan = 'reject_scans_{tag}'"]
        if fmt.quote == "":
            options.append("escape = ''")
        if fmt.names:
            options.append("columns = {" + ", ".join(f"{quote(n)}: 'VARCHAR'" for n in fmt.names) + "}")
        else:
            options.append("all_varchar = true")
        source = f"read_csv({quote(path)}, {', '.join(options)})"
        first_line = 2 if fmt.header else 1  # a header is line 1
    try:
        con.execute(f"DROP TABLE IF EXISTS rejects_{tag}")
        con.execute(f"DROP TABLE IF EXISTS reject_scans_{tag}")
        con.execute(f"CREATE OR REPLACE TABLE src_{tag} AS SELECT * FROM {source}")
        if path.suffix != ".parquet":
            rejected = con.execute(
                f"SELECT line, lower(error_type), error_message FROM rejects_{tag} ORDER BY line"
            ).fetchall()
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None
    first: dict[int, tuple] = {}  # DuckDB has a rejects row per missing column of a short line: keep its first
    for row in rejected:
        first.setdefault(row[0], row)
    rejected = list(first.values())
    if rejected and bad_rows == "fail":
        line, _, message = rejected[0]
        more = f" ({len(rejected)} such lines; ingest.bad_rows: skip counts and skips them)"
        raise DataError(f"{path}: line {line}: {message.splitlines()[0]}{more}")
    present = [r[0] for r in con.execute(f"DESCRIBE src_{tag}").fetchall()]
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
    n = con.execute(f"SELECT count(*) FROM src_{tag}").fetchone()[0]
    if n == 0 and not rejected:
        raise DataError(f"{path}: no rows")
    # the reader passes over a refused line, and silently over an empty one of a file of several columns:
    # number the rows by the file's own lines
    text = path.suffix != ".parquet"
    gaps = sorted({r[0] for r in rejected} | (set(blank_lines(path, fmt.encoding)) if text and len(present) > 1 else set()))
    gaps = [line for line in gaps if line >= first_line]
    if gaps:
        con.execute(f"CREATE OR REPLACE TABLE refused_{tag} AS SELECT unnest(?::BIGINT[]) AS line", [gaps])
        numbered = (f"(SELECT s.*, n.line FROM (SELECT *, row_number() OVER () AS k FROM src_{tag}) s JOIN "
                    f"(SELECT line, row_number() OVER (ORDER BY line) AS k FROM range({first_line}, "
                    f"{first_line} + {n + len(gaps)}) r(line) ANTI JOIN refused_{tag} USING (line)) n "
                    "USING (k))")
    else:
        numbered = f"(SELECT *, row_number() OVER () - 1 + {first_line} AS line FROM src_{tag})"
    problems = []  # (SQL condition of a bad row, its reason)
    for name, typ in columns.items():
        col = ident(name)
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
    casts = ", ".join(f"CAST({ident(c)} AS {t}) AS {ident(c)}" for c, t in columns.items())
    if bad_rows == "fail":  # every row passed the checks above
        con.execute(f"CREATE OR REPLACE TABLE {into} AS SELECT {casts}, line FROM {numbered}")
        return None
    skipped = _skipped(con, path, spec.name, numbered, problems, rejected)
    any_bad = " OR ".join(cond for cond, _ in problems)
    con.execute(f"CREATE OR REPLACE TABLE {into} AS SELECT {casts}, line FROM {numbered} "
                f"WHERE NOT ({any_bad})")
    return skipped


_BLANK = re.compile(rb"\n(?=\r?\n)")  # a line break followed by an empty line
_CHUNK = 1 << 24


def blank_lines(path: Path, encoding: str = "utf-8") -> list[int]:
    """The 1-based numbers of the empty lines of a text file (plain or ``.gz``), read in chunks."""
    opener = gzip.open if path.suffix == ".gz" else open
    if encoding.replace("-", "").lower().startswith("utf16"):  # not ASCII-compatible: read as text
        with opener(path, "rt", encoding=encoding, newline="") as f:
            return [i for i, line in enumerate(f, 1) if line in ("\n", "\r\n", "\r")]
    found: set[int] = set()
    # a line break put before the file makes an empty first line visible; a line break counted from there
    # numbers the line after it. ``before``: the line breaks before ``buf``, which repeats the last 2 bytes
    buf, before = b"\n", 0
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            buf = buf[-2:] + chunk
            if b"\n\n" in buf or b"\n\r\n" in buf:
                found.update(before + buf.count(b"\n", 0, m.start() + 1) for m in _BLANK.finditer(buf))
            before += buf.count(b"\n") - buf[-2:].count(b"\n")
    return sorted(found)


def _skipped(con, path: Path, name: str, numbered: str, problems: list, rejected: list) -> dict | None:
    """What ``load_file`` left out of ``path``: count, count by reason (a row's first), first line numbers."""
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


def add_skipped(record: dict | None, path: Path, table: str, reasons: dict[str, int], lines: list[int]) -> dict:
    """``load_file``'s skip record of ``path`` (a new one if it skipped nothing) with further rows a reader
    left out: their count by reason and their first line numbers."""
    record = record or {"file": path.name, "table": table, "rows": 0, "reasons": {}, "lines": []}
    merged = dict(record["reasons"])
    for why, n in reasons.items():
        merged[why] = merged.get(why, 0) + n
    return {**record, "rows": record["rows"] + sum(reasons.values()), "reasons": merged,
            "lines": sorted(record["lines"] + lines)[:SKIPPED_LINES]}


def refuse_rows(con: duckdb.DuckDBPyConnection, spec: RawTable, table: str, path: Path, bad: str, column: str,
                why: str, bad_rows: str, skipped: dict | None, hint: str = "") -> dict | None:
    """Rows of ``table`` (loaded by ``load_file`` with ``spec``) where the SQL condition ``bad`` holds are
    malformed: fail naming the file, column and first such line (then ``hint``), or (``bad_rows: skip``)
    delete them and add them to ``load_file``'s skip record of the same file (returned)."""
    if bad_rows == "fail":
        row = con.execute(f"SELECT line, CAST({ident(column)} AS VARCHAR) FROM {table} WHERE {bad} "
                          "ORDER BY line LIMIT 1").fetchone()
        if row is not None:
            raise DataError(f"{path}: column {column!r} line {row[0]}: {row[1]!r} is {why}{hint}")
        return skipped
    n, lines = con.execute(f"SELECT count(*), (SELECT list(line ORDER BY line) FROM (SELECT line FROM {table} "
                           f"WHERE {bad} ORDER BY line LIMIT {SKIPPED_LINES})) FROM {table} WHERE {bad}").fetchone()
    if n == 0:
        return skipped
    if n == con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
        raise DataError(f"{path}: every row is malformed (first, line {lines[0]}: {column}: {why})")
    con.execute(f"DELETE FROM {table} WHERE {bad}")
    return add_skipped(skipped, path, spec.name, {f"{column}: {why}": n}, lines)


def ids_from_logs(con: duckdb.DuckDBPyConnection, key: str, logs: list[str]) -> None:
    """A side table ``raw_users`` / ``raw_items`` of the ids the logs mention, for sources without one
    (``line``: none, 0)."""
    table = {"user_id": "raw_users", "item_id": "raw_items"}[key]
    union = " UNION ".join(f"SELECT {key} FROM {log}" for log in logs)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT DISTINCT {key}, 0 AS line FROM ({union})")
