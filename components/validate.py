"""Validate: a Great Expectations suite derived from the feature schema, run over ``processed``.

The suite is built from ``schema.json`` (which features each table carries, the
vocabulary size of every id feature, the label columns) and checked with an
ephemeral GX context, one pandas batch per table plus a few derived batches:

- ``<table>`` (each table ingest wrote; ``meta.json`` lists them, so a source
  without interactions has no recall tables to check): required columns
  present, no nulls, sparse ids in ``[0, vocab_size - 1]``, labels in {0, 1}
  and, for a funnel, in funnel order (a label never exceeds the one before
  it: conversion only after a click), real-valued
  labels (the schema's ``values``) present and non-null, at least one row
  and at most ``max_len`` ids per sequence
- ``<table>.<sequence>``: the ids inside a list column (e.g. ``hist``),
  flattened into the column ``element`` of their own batch, non-null and in
  ``[0, vocab_size - 1]``
- ``recall_test.after_train``: each test row's ``ts`` >= that user's last
  ``recall_train`` ``ts``
- ``ranking_<later>.after_<earlier>``: every row of a later ranking split is no
  earlier than the last row of each earlier split (train → valid → test)

Value expectations are only added for columns that exist; a missing column
fails its ``expect_column_to_exist``. The JSON report is written atomically
first; a failed suite then raises ``ValidationFailed`` naming each failure.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from components.errors import DataError, ValidationFailed
from components.io import read_json, read_parquet, write_json
from rechub_core.features import Feature, Schema, SequenceFeature, SparseFeature

TS = "ts"
USER_KEY = "user_id"
ITEM_KEY = "item_id"
ELEMENT = "element"  # the column of a flattened sequence batch
SAMPLE = 5  # unexpected values kept per failed expectation
MESSAGE_FAILURES = 10  # failures spelled out in the exception message


@dataclass(frozen=True)
class TableLayout:
    """Which schema features (and other columns) a processed table carries."""

    groups: tuple[str, ...]
    extra: tuple[str, ...] = ()  # single features of other groups, by name
    sequences: bool = True  # side tables (one row per id) carry no histories
    labels: bool = False
    ts: bool = False
    per_user: bool = False  # a long log: checked as one summary row per user (see _per_user_frame)


_RECALL = TableLayout(("user",), extra=(ITEM_KEY,), ts=True)
_RANKING = TableLayout(("user", "item", "context"), labels=True, ts=True)
TABLES: dict[str, TableLayout] = {
    "users": TableLayout(("user",), sequences=False),
    "items": TableLayout(("item",), sequences=False),
    "recall_train": _RECALL,
    "recall_test": _RECALL,
    "ranking_train": _RANKING,
    "ranking_valid": _RANKING,
    "ranking_test": _RANKING,
    "behaviors": TableLayout((), extra=(USER_KEY, ITEM_KEY, "category"), sequences=False, ts=True, per_user=True),
}
RANKING_SPLITS = ("ranking_train", "ranking_valid", "ranking_test")  # in time order


def expected_tables(processed: Path) -> dict[str, TableLayout]:
    """The tables ingest says it wrote (``meta.json`` rows; every table for data from before it said so)."""
    meta = Path(processed) / "meta.json"
    written = read_json(meta).get("rows") if meta.exists() else None
    return {name: layout for name, layout in TABLES.items() if written is None or name in written}


def table_features(schema: Schema, layout: TableLayout) -> tuple[Feature, ...]:
    """The schema features a table with ``layout`` must carry: those of its groups the data has (the
    labelled rows of Criteo have only ``context``), and ``extra`` (``KeyError`` if the schema lacks one)."""
    groups = [g for g in layout.groups if g in schema.groups]
    if not groups and layout.groups:
        raise KeyError(f"schema has none of the feature groups {list(layout.groups)}; it has {sorted(schema.groups)}")
    feats = list(schema.features(*groups))
    feats += [schema.feature(name) for name in layout.extra if name not in {f.name for f in feats}]
    if not layout.sequences:
        feats = [f for f in feats if not isinstance(f, SequenceFeature)]
    return tuple(feats)


def _column_expectations(gxe: Any, feature: Feature, present: bool) -> list:
    out = [gxe.ExpectColumnToExist(column=feature.name)]
    if not present:
        return out
    out.append(gxe.ExpectColumnValuesToNotBeNull(column=feature.name))
    if isinstance(feature, SparseFeature):
        out.append(_in_vocab(gxe, feature.name, feature.vocab_size))
    return out


def _in_vocab(gxe: Any, column: str, vocab_size: int):
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=vocab_size - 1)


def build_batches(gxe: Any, schema: Schema, tables: dict[str, pa.Table]) -> list[tuple[str, pd.DataFrame, list]]:
    """``(batch name, frame, expectations)`` for every table and derived batch."""
    batches, frames = [], {}
    for name, table in tables.items():
        layout = TABLES[name]
        if layout.per_user:
            batches.append(_per_user_batch(gxe, schema, name, layout, table))
            continue
        cols = set(table.column_names)
        expectations = [gxe.ExpectTableRowCountToBeBetween(min_value=1)]
        derived = []
        for feat in table_features(schema, layout):
            expectations += _column_expectations(gxe, feat, feat.name in cols)
            if isinstance(feat, SequenceFeature) and feat.name in cols:
                expectations.append(  # the batch holds the list lengths (see _frame)
                    gxe.ExpectColumnValuesToBeBetween(
                        column=feat.name, min_value=0, max_value=feat.max_len, description="list length"
                    )
                )
                derived.append(_elements_batch(gxe, name, feat, table.column(feat.name)))
        extra_cols = [*((*schema.labels, *schema.values) if layout.labels else ()), *((TS,) if layout.ts else ())]
        for col in extra_cols:
            expectations.append(gxe.ExpectColumnToExist(column=col))
            if col in cols:
                expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
        if layout.labels:
            labels = [c for c in schema.labels if c in cols]
            expectations += [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=[0, 1]) for c in labels]
            expectations += [  # a funnel's labels in order: a later one never exceeds an earlier one
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True)
                for a, b in zip(schema.labels, schema.labels[1:])
                if schema.funnel and a in cols and b in cols
            ]
        frames[name] = _frame(table)
        batches.append((name, frames[name], expectations))
        batches += derived
    return batches + _temporal_batches(gxe, frames)


def _per_user_batch(gxe: Any, schema: Schema, name: str, layout: TableLayout, table: pa.Table) -> tuple:
    """A long log (millions of rows) as one row per user: its row count, each id column's min and
    max, each column's nulls, and how many rows break the (user, ts) order ``BehaviorLog`` needs.

    The expectations on these summaries are those of the rows (ids in their vocabularies, no nulls,
    sorted), and a failure names the user; checking tens of millions of rows one by one in GX would
    cost minutes.
    """
    cols = set(table.column_names)
    expectations = [gxe.ExpectTableRowCountToBeBetween(min_value=1)]
    required = [*layout.extra, *((TS,) if layout.ts else ())]
    if not set(required) <= cols:  # the raw columns' own batch, to name what is missing
        expectations += [gxe.ExpectColumnToExist(column=c) for c in required]
        return name, pd.DataFrame({c: [] for c in cols}), expectations
    ids = [f for f in table_features(schema, layout) if isinstance(f, SparseFeature) and f.name != USER_KEY]
    users = table.column(USER_KEY).to_numpy(zero_copy_only=False)
    ts = table.column(TS).to_numpy(zero_copy_only=False)
    broken = np.zeros(len(users), dtype=np.int64)
    if len(users) > 1:  # row i+1 comes before row i in (user, ts) order
        broken[1:] = (users[1:] < users[:-1]) | ((users[1:] == users[:-1]) & (ts[1:] < ts[:-1]))
    table = table.append_column("out_of_order", pa.array(broken))
    aggregations = [("out_of_order", "count"), ("out_of_order", "sum")]
    aggregations += [(f.name, agg) for f in ids for agg in ("min", "max")]
    aggregations += [(c, "count", pc.CountOptions(mode="only_null")) for c in required if c != USER_KEY]
    summary = table.group_by(USER_KEY, use_threads=False).aggregate(aggregations)
    names = ["rows" if c == "out_of_order_count" else c.removesuffix("_count") + "_nulls" if c.endswith("_count") else c
             for c in summary.column_names]
    frame = _frame(summary.rename_columns(names))
    expectations += [gxe.ExpectColumnValuesToNotBeNull(column=USER_KEY), _in_vocab(gxe, USER_KEY, schema.feature(USER_KEY).vocab_size)]
    expectations += [_in_vocab(gxe, f"{f.name}_{agg}", f.vocab_size) for f in ids for agg in ("min", "max")]
    expectations += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0)
                     for c in ["out_of_order_sum", *(f"{c}_nulls" for c in required if c != USER_KEY)]]
    return f"{name}.per_user", frame, expectations


def _elements_batch(gxe: Any, table: str, feat: SequenceFeature, column: pa.ChunkedArray) -> tuple:
    """The ids inside a list column, flattened into one column of their own batch."""
    elements = pc.list_flatten(column).cast(pa.int64())  # null lists drop out; null elements stay
    frame = pd.DataFrame({ELEMENT: elements.to_numpy(zero_copy_only=False)})
    return (
        f"{table}.{feat.name}",
        frame,
        [
            gxe.ExpectColumnValuesToNotBeNull(column=ELEMENT),
            _in_vocab(gxe, ELEMENT, feat.vocab_size),
        ],
    )


def _frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame GX checks quickly: 64-bit numbers, and list columns as their lengths.

    GX fingerprints every batch with ``pd.util.hash_pandas_object`` (falling back
    to pickling the whole frame for unhashable list cells) and only vectorises
    range checks on int64/float64 columns, so a list column enters its table's
    batch as its list length (null where the list is null) and narrower numbers
    are widened; the list elements are checked in their own flattened batch.
    """
    columns = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            col = pc.list_value_length(col).cast(pa.int64())
        elif pa.types.is_integer(col.type):
            col = col.cast(pa.int64(), safe=False)  # a huge uint64 wraps negative: still out of range
        elif pa.types.is_floating(col.type):
            col = col.cast(pa.float64())
        columns[name] = col.to_numpy(zero_copy_only=False)
    return pd.DataFrame(columns)


def _temporal_batches(gxe: Any, frames: dict[str, pd.DataFrame]) -> list:
    """Derived frames pairing each row's ``ts`` with the end of the period it must not precede."""
    out = []
    train, test = frames.get("recall_train", pd.DataFrame()), frames.get("recall_test", pd.DataFrame())
    if {USER_KEY, TS} <= set(train.columns) & set(test.columns):
        last = train.groupby(USER_KEY)[TS].max().rename(f"train_max_{TS}")
        pairs = test[[USER_KEY, TS]].join(last, on=USER_KEY, how="inner")  # users with train rows
        out.append(("recall_test.after_train", pairs, [_after(gxe, f"train_max_{TS}")]))
    for i, later in enumerate(RANKING_SPLITS):
        for earlier in RANKING_SPLITS[:i]:
            if later not in frames or earlier not in frames or TS not in frames[later] or TS not in frames[earlier]:
                continue
            period = earlier.removeprefix("ranking_")
            bound = f"{period}_max_{TS}"
            pairs = frames[later][[TS]].assign(**{bound: frames[earlier][TS].max()})
            out.append((f"{later}.after_{period}", pairs, [_after(gxe, bound)]))
    return out


def _after(gxe: Any, bound: str):
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=TS, column_B=bound, or_equal=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _entry(batch: str, res: Any) -> dict:
    kwargs = res.expectation_config.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    entry = {
        "table": batch,
        "expectation": res.expectation_config.type,
        "columns": columns,
        "success": bool(res.success),
    }
    if res.expectation_config.description:
        entry["description"] = res.expectation_config.description
    params = {k: v for k, v in kwargs.items() if k not in {"batch_id", "column", "column_A", "column_B"}}
    if params:
        entry["params"] = _jsonable(params)
    if not res.success:
        result = res.result or {}
        for key, out in (("unexpected_count", "unexpected_count"), ("unexpected_percent", "unexpected_percent"),
                         ("partial_unexpected_list", "unexpected_sample"), ("observed_value", "observed_value")):
            if key in result:
                entry[out] = _jsonable(result[key])
        if isinstance(entry.get("unexpected_percent"), float):
            entry["unexpected_percent"] = round(entry["unexpected_percent"], 4)
        info = res.exception_info or {}
        messages = [info.get("exception_message")] if "exception_message" in info else [
            v.get("exception_message") for v in info.values() if isinstance(v, dict)
        ]
        messages = [m for m in messages if m]
        if messages:
            entry["error"] = messages[0]
    return entry


def _describe(entry: dict) -> str:
    cols = entry["columns"]
    where = entry["table"] + ("" if not cols else f".{cols[0]}" if len(cols) == 1 else f".({', '.join(cols)})")
    if "description" in entry:
        where += f" ({entry['description']})"
    if "error" in entry:
        detail = f"error: {entry['error']}"
    elif entry.get("unexpected_count") is not None:
        detail = f"{entry['unexpected_count']} unexpected, e.g. {entry.get('unexpected_sample', [])[:3]}"
    elif entry["expectation"] == "expect_column_to_exist":
        detail = "column missing"
    else:
        detail = f"observed {entry.get('observed_value')}"
    return f"{where}: {entry['expectation']} failed ({detail})"


def run(*, processed: Path, report: Path) -> dict:
    """Validate the processed tables against the schema-derived suite; returns the report."""
    processed, report = Path(processed), Path(report)
    schema_path = processed / "schema.json"
    if not schema_path.exists():
        raise DataError(f"{schema_path}: missing; run the ingest stage first")
    try:
        schema = Schema.from_json(schema_path.read_text())
        layouts = expected_tables(processed)
        for layout in layouts.values():
            table_features(schema, layout)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{schema_path}: not a valid feature schema for the processed tables ({exc})") from None
    tables = {name: read_parquet(processed / f"{name}.parquet") for name in layouts}

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # this module pins its own logger to INFO and logs a line for every ephemeral context
    logging.getLogger(ProgressBarsConfig.__module__).setLevel(logging.WARNING)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("processed")
    result_format = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE}

    entries, rows = [], {}
    for name, frame, expectations in build_batches(gx.expectations, schema, tables):
        for i, exp in enumerate(expectations):
            exp.meta = {"order": i}
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("whole")
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=definition, suite=suite)
        )
        results = validation.run(batch_parameters={"dataframe": frame}, result_format=result_format).results
        results = sorted(results, key=lambda r: r.expectation_config.meta["order"])
        entries += [_entry(name, r) for r in results]
        rows[name] = len(frame)

    failed = [e for e in entries if not e["success"]]
    meta = processed / "meta.json"
    out = {
        "success": not failed,
        "evaluated": len(entries),
        "failed": len(failed),
        "rows": rows,
        # raw rows ingest left out under ingest.bad_rows: skip, per file
        "skipped_rows": read_json(meta).get("skipped_rows", []) if meta.exists() else [],
        "expectations": entries,
    }
    write_json(report, out)
    if failed:
        lines = [_describe(e) for e in failed[:MESSAGE_FAILURES]]
        if len(failed) > MESSAGE_FAILURES:
            lines.append(f"... and {len(failed) - MESSAGE_FAILURES} more")
        raise ValidationFailed(
            f"{len(failed)} of {len(entries)} expectations failed on {processed} (report: {report}):\n"
            + "\n".join(lines)
        )
    return out
