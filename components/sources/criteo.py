"""``source: criteo``: the Criteo display-advertising click logs, one tab-separated file.

**Files.** ``ingest.criteo.file`` in ``raw_dir``: ``train.txt`` of the Kaggle Display Advertising
Challenge (45,840,617 lines, 7 days, ~11 GB) or one decompressed day file ``day_0`` ... ``day_23`` of
the Criteo 1TB Click Logs (~190 M lines each). Both have no header and 40 tab-separated fields per
line: the label (1 clicked, 0 not), 13 integer features ``I1..I13`` (mostly counts), 26 categorical
features ``C1..C26`` (values hashed to 32 bits, written as 8 hex digits). Any feature may be empty,
the label never is. The lines are in time order; the data has no timestamps. The Kaggle
``test.txt`` has no labels and is not read.

**Where users get it** (nothing is downloaded by rechub): the Criteo AI Lab pages "Kaggle Display
Advertising Challenge Dataset" (https://ailab.criteo.com/ressources/, archive
``criteo-research-kaggle-display-advertising-challenge-dataset.tar.gz``) and "Download Criteo 1TB
Click Logs dataset" (https://ailab.criteo.com/download-criteo-1tb-click-logs-dataset/).

**Preprocessing**, that of DLRM's reference code (Naumov et al. 2019, facebookresearch/dlrm
``data_utils.py`` and ``dlrm_data_pytorch.py``; the TF model garden and torchrec Criteo pipelines
do the same) for the integers and that of AutoInt (Song et al., CIKM 2019, Sec. 5.1.1) for rare
categories:

- an empty integer field is a count of 0 and a negative integer (``I2`` has values down to -3) is
  set to 0, as DLRM does (``X_int[X_int < 0] = 0``, missing filled with 0); then ``ln(1 + x)``
  (ingest's ``Numeric(log=True)``), standardised with the training rows' mean and deviation;
- a categorical value is kept as its hex string; an empty one is id 0 (missing); a value seen fewer
  than ``ingest.criteo.min_count`` times in the training rows shares the out-of-vocabulary id 1
  (AutoInt: threshold 10 on Criteo; ``Categorical(min_count=k)``), and so does a value first seen
  in the valid or test rows. Vocabularies and statistics come from the training split only, so
  nothing is learnt from the future;
- the label becomes the binary label ``click``.

**Canonical tables.** Only ``raw_impressions`` (no users, items or interactions): one row per
line, ``ts`` = the line number (the file's time order), the context features ``I1..I13`` (dense)
and ``C1..C26`` (sparse) and ``click``. Ingest splits it by ``ingest.ranking_split`` over ``ts``
into time-ordered train / valid / test. DLRM's Kaggle protocol (the file cut into 7 equal days: 6
for training, the last one halved into validation and test) is ``valid_fraction`` =
``test_fraction`` = 0.0714.

**Streaming.** The file is read by DuckDB into a table of ingest's on-disk database, which spills
past ``ingest.memory_limit``; every step after is SQL, and ``raw_impressions`` is a view over the
loaded table, not a copy.

**Malformed rows** (a line without 40 fields, bytes not UTF-8, an integer field or label that is
not an integer, a label other than 0 or 1) stop ingest with the file and line, or with
``bad_rows: skip`` are left out and counted in ``meta.json``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from components.sources.base import (
    Categorical,
    Numeric,
    RawFormat,
    RawTable,
    Source,
    ident,
    load_file,
    refuse_rows,
    require_file,
)

LABEL = "click"
INTEGERS = tuple(f"I{i}" for i in range(1, 14))
CATEGORIES = tuple(f"C{i}" for i in range(1, 27))
FIELDS = (LABEL, *INTEGERS, *CATEGORIES)
FORMAT = RawFormat(delim="\t", header=False, names=FIELDS, quote="")  # hashes and integers: never quoted
SPEC = RawTable(
    "impressions",
    {LABEL: "INTEGER", **{c: "BIGINT" for c in INTEGERS}, **{c: "VARCHAR" for c in CATEGORIES}},
    required=(LABEL,),
)
LOADED = "criteo_rows"


def read(con: duckdb.DuckDBPyConnection, params, raw_dir: Path) -> Source:
    settings = params.criteo
    path = require_file(raw_dir, settings.file, "the Criteo click log: label, I1..I13, C1..C26, tab-separated")
    skipped = load_file(con, path, SPEC, FORMAT, params.bad_rows, into=LOADED)
    con.execute(f"DROP TABLE IF EXISTS src_{LOADED}")  # load_file's untyped copy of the file: not needed any more
    skipped = refuse_rows(con, SPEC, LOADED, path, f"{LABEL} NOT IN (0, 1)", LABEL, "not a label (0 or 1)",
                          params.bad_rows, skipped)
    counts = ", ".join(f"count(*) FILTER ({ident(c)} IS NULL), count(*) FILTER ({ident(c)} < 0)" for c in INTEGERS)
    stats = con.execute(f"SELECT count(*), sum({LABEL}), {counts} FROM {LOADED}").fetchone()
    integers = ", ".join(f"greatest(coalesce({ident(c)}, 0), 0) AS {ident(c)}" for c in INTEGERS)
    categories = ", ".join(ident(c) for c in CATEGORIES)
    con.execute(f"CREATE OR REPLACE VIEW raw_impressions AS "
                f"SELECT line AS ts, {integers}, {categories}, {LABEL}, line FROM {LOADED}")
    return Source(
        name="criteo",
        tables={"impressions"},
        files={"impressions": path},
        context=(*(Numeric(c, log=True) for c in INTEGERS),
                 *(Categorical(c, min_count=settings.min_count) for c in CATEGORIES)),
        labels=(LABEL,),
        ranking_split="time",
        skipped=[s for s in (skipped,) if s is not None],
        notes={"criteo": {
            "rows": stats[0], "clicks": int(stats[1]),
            "empty_integers_set_to_0": {c: stats[2 + 2 * i] for i, c in enumerate(INTEGERS) if stats[2 + 2 * i]},
            "negative_integers_set_to_0": {c: stats[3 + 2 * i] for i, c in enumerate(INTEGERS) if stats[3 + 2 * i]},
        }},
    )

