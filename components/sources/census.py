"""``source: census``: UCI Census-Income (KDD), the two-task benchmark of MMoE.

**Files.** ``ingest.census.train_file`` (``census-income.data``, 199,523 lines) and
``ingest.census.test_file`` (``census-income.test``, 99,762 lines) in ``raw_dir``, decompressed.
No header; 42 fields per line, separated by a comma and a space: the 40 attributes of
``census-income.names`` (7 continuous, 33 nominal), the instance weight (field 25, between
"detailed household summary in household" and "migration code-change in msa") and the income class
(``- 50000.`` or ``50000+.``). ``?`` marks a missing value in some nominal fields.

**Where users get it** (nothing is downloaded by rechub): the UCI Machine Learning Repository,
"Census-Income (KDD)", https://archive.ics.uci.edu/dataset/117/census+income+kdd (the archive holds
``census-income.data.gz``, ``census-income.test.gz`` and ``census-income.names``).

**Preprocessing** follows MMoE (Ma et al., KDD 2018, Sec. 6.3.1), group 1:

- two binary labels: ``income`` (the class is ``50000+.``; task 1) and ``never_married`` (marital
  status is "Never married"; task 2); ``funnel`` is off (neither label implies the other);
- the paper "remove[s] education and marital status from input features as they are treated as
  labels in these setups": neither is a feature; the instance weight is dropped as well (the
  ``.names`` file: "should *not* be used in the classifiers");
- the 7 continuous attributes of ``census-income.names`` are dense features, standardised with the
  training rows' statistics; the four money amounts (wage per hour, capital gains, capital losses,
  dividends from stocks: zero for most people, heavy-tailed otherwise) are ``ln(1 + x)`` first;
- the 33 nominal attributes (less the two above) are categorical, codes included (industry and
  occupation recodes, own business, veterans benefits, year): ``?`` is missing (id 0), as is a
  value the training rows never show;
- split as in the paper: ``census-income.data`` is the training set; ``census-income.test`` is
  split 1:1 into validation and test "randomly", here deterministically: its rows ordered by the
  MD5 of their line number, the first half (49,881 rows) valid, the rest test. The data has no
  time: ``ts`` is the line number, offset so that the training rows come first, then the valid
  rows, then the test rows (each in file order), the order ingest's validation checks.

**Canonical tables.** Only ``raw_impressions`` (no users or items): one row per line, with its
``split`` (``ranking_split: given``), the context features, ``income`` and ``never_married``.

**Malformed rows** (a line without 42 fields, bytes not UTF-8, a continuous value that is not a
number, an income class other than the two, an empty marital status) stop ingest with the file and
line, or with ``bad_rows: skip`` are left out and counted in ``meta.json``.
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

# the 42 fields in file order (names as in the column list of the 1010data tutorial that MMoE
# reimplementations use); kind: num (dense), log (ln(1 + x), dense), cat, label (a label's source)
# or drop (the instance weight; education, a label of MMoE's group 2)
FIELDS = (
    ("age", "num"), ("class_worker", "cat"), ("det_ind_code", "cat"), ("det_occ_code", "cat"),
    ("education", "drop"), ("wage_per_hour", "log"), ("hs_college", "cat"), ("marital_stat", "label"),
    ("major_ind_code", "cat"), ("major_occ_code", "cat"), ("race", "cat"), ("hisp_origin", "cat"),
    ("sex", "cat"), ("union_member", "cat"), ("unemp_reason", "cat"), ("full_or_part_emp", "cat"),
    ("capital_gains", "log"), ("capital_losses", "log"), ("stock_dividends", "log"), ("tax_filer_stat", "cat"),
    ("region_prev_res", "cat"), ("state_prev_res", "cat"), ("det_hh_fam_stat", "cat"), ("det_hh_summ", "cat"),
    ("instance_weight", "drop"), ("mig_chg_msa", "cat"), ("mig_chg_reg", "cat"), ("mig_move_reg", "cat"),
    ("mig_same", "cat"), ("mig_prev_sunbelt", "cat"), ("num_emp", "num"), ("fam_under_18", "cat"),
    ("country_father", "cat"), ("country_mother", "cat"), ("country_self", "cat"), ("citizenship", "cat"),
    ("own_or_self", "cat"), ("vet_question", "cat"), ("vet_benefits", "cat"), ("weeks_worked", "num"),
    ("year", "cat"), ("income_50k", "label"),
)
NAMES = tuple(name for name, _ in FIELDS)
FORMAT = RawFormat(delim=", ", header=False, names=NAMES, quote="")  # "All commas and periods were changed to spaces"
SPEC = RawTable(
    "impressions",
    {name: "DOUBLE" if kind in ("num", "log") else "VARCHAR" for name, kind in FIELDS},
    required=("marital_stat", "income_50k"),
)
MISSING = "?"
INCOME = {"- 50000.": 0, "50000+.": 1}  # the class values of the files; also read without the final period
NEVER_MARRIED = "Never married"
LABELS = ("income", "never_married")


def context() -> tuple[Categorical | Numeric, ...]:
    """The features: every field but the weight and the label sources, in file order."""
    return tuple(Categorical(name) if kind == "cat" else Numeric(name, log=kind == "log")
                 for name, kind in FIELDS if kind in ("num", "log", "cat"))


def read(con: duckdb.DuckDBPyConnection, params, raw_dir: Path) -> Source:
    settings = params.census
    paths = {
        "train": require_file(raw_dir, settings.train_file, "census-income.data of UCI Census-Income (KDD)"),
        "test": require_file(raw_dir, settings.test_file, "census-income.test of UCI Census-Income (KDD)"),
    }
    income = ("CASE rtrim(income_50k, '.') " + " ".join(f"WHEN '{k.rstrip('.')}' THEN {v}" for k, v in INCOME.items())
              + " END")
    skipped = []
    for part, path in paths.items():
        record = load_file(con, path, SPEC, FORMAT, params.bad_rows, into=f"census_{part}")
        record = refuse_rows(con, SPEC, f"census_{part}", path, f"{income} IS NULL", "income_50k",
                             f"not an income class ({' or '.join(map(repr, INCOME))})", params.bad_rows, record)
        if record is not None:
            skipped.append(record)
    features = context()
    selects = ", ".join(ident(f.name) if isinstance(f, Numeric) else f"nullif({ident(f.name)}, '{MISSING}') AS {ident(f.name)}"
                        for f in features)
    # the test file's rows, ordered by a hash of their line, are split in half: valid, then test. The
    # data has no time; ts orders the splits (train, valid, test; each in file order), as ingest's
    # validation expects of ranking splits
    train_lines, test_lines = (con.execute(f"SELECT max(line) FROM census_{part}").fetchone()[0] for part in paths)
    con.execute(f"""
        CREATE TABLE raw_impressions AS
        SELECT CASE split WHEN 'train' THEN line WHEN 'valid' THEN {train_lines} + line
                          ELSE {train_lines + test_lines} + line END AS ts,
               split, {selects}, {income} AS income,
               CAST(marital_stat = '{NEVER_MARRIED}' AS INTEGER) AS never_married, line
        FROM (SELECT *, 'train' AS split FROM census_train
              UNION ALL BY NAME
              SELECT *, CASE WHEN row_number() OVER (ORDER BY md5(CAST(line AS VARCHAR))) <= count(*) OVER () // 2
                             THEN 'valid' ELSE 'test' END AS split
              FROM census_test)
        ORDER BY ts""")
    rows = dict(con.execute("SELECT split, count(*) FROM raw_impressions GROUP BY split").fetchall())
    missing = ", ".join(f"count(*) FILTER ({ident(f.name)} IS NULL) AS {ident(f.name)}" for f in features)
    cursor = con.execute(f"SELECT {missing} FROM raw_impressions")
    empty = {d[0]: n for d, n in zip(cursor.description, cursor.fetchone()) if n}
    return Source(
        name="census",
        tables={"impressions"},
        files={"impressions": paths["train"]},
        context=features,
        labels=LABELS,
        funnel=False,
        ranking_split="given",
        skipped=skipped,
        notes={"census": {"rows": {s: rows.get(s, 0) for s in ("train", "valid", "test")},
                          "missing_values": empty,
                          "not_features": [n for n, kind in FIELDS if kind in ("drop", "label")]}},
    )
