"""``ingest.source: movielens`` on tiny files in the real ML-1M and ML-100K layouts (tests/sources/movielens.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from components.errors import DataError
from components.sources.movielens import AGE_BANDS
from pipelines.runner import run_stage
from rechub_core.features import Schema
from tests.sources import movielens
from tests import sources

HISTORY_LEN = 10  # tiny params' ingest.history_len
FILES = {"ml-1m": ("ratings.dat", "users.dat", "movies.dat"), "ml-100k": ("u.data", "u.user", "u.item")}


def project(root: Path, variant: str = "ml-1m", *, run: bool = True, **ingest) -> Path:
    """A project at ``root`` reading the tiny data set in ``variant``'s layout (ingested if ``run``)."""
    return sources.project(root, movielens.write(root / "raw", variant), run=run, **ingest)


@pytest.fixture(scope="module")
def ml1m(tmp_path_factory) -> Path:
    return project(tmp_path_factory.mktemp("ml1m"), "ml-1m")


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory) -> Path:
    return project(tmp_path_factory.mktemp("ml100k"), "ml-100k")


@pytest.fixture(params=["ml-1m", "ml-100k"])
def ingested(request) -> tuple[str, Path]:
    return request.param, request.getfixturevalue({"ml-1m": "ml1m", "ml-100k": "ml100k"}[request.param])


def read(root: Path, name: str) -> pd.DataFrame:
    return pq.read_table(root / "data" / "processed" / f"{name}.parquet").to_pandas()


def vocab(root: Path, name: str) -> dict:
    """id -> raw value of a feature's vocabulary."""
    table = read(root, f"vocab/{name}")
    return dict(zip(table["id"], table["raw"]))


def raw_ratings(root: Path, variant: str) -> pd.DataFrame:
    """The ratings file as written, with each row's 1-based line."""
    path = root / "raw" / FILES[variant][0]
    sep = "::" if variant == "ml-1m" else "\t"
    rows = [line.split(sep) for line in path.read_text().splitlines()]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "ts"]).astype(int)
    frame["line"] = np.arange(1, len(frame) + 1)
    return frame


def n_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def replace_line(path: Path, line: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text
    path.write_bytes(b"\n".join(lines))


# --- what ingest writes -----------------------------------------------------------------------------


def test_every_table_with_the_row_counts_of_the_files(ingested):
    variant, root = ingested
    ratings, users, items = (root / "raw" / name for name in FILES[variant])
    n_ratings = n_lines(ratings)
    meta = json.loads((root / "data/processed/meta.json").read_text())
    rows = meta["rows"]
    assert rows["users"] == n_lines(users) == 150 and rows["items"] == n_lines(items) == 200
    assert rows["recall_test"] == 150  # every user has a last rating and ratings before it
    assert rows["recall_train"] + rows["recall_test"] == n_ratings  # every rating is an interaction
    assert rows["ranking_train"] + rows["ranking_valid"] + rows["ranking_test"] == n_ratings  # and a ranking row
    assert rows["behaviors"] == n_ratings  # and the long log
    assert meta["source"] == "movielens" and meta["skipped_rows"] == []
    assert meta["preparation"]["movielens"]["ratings"] == n_ratings


def test_schema_groups_labels_and_values(ingested):
    _, root = ingested
    schema = Schema.from_json((root / "data/processed/schema.json").read_text())
    names = {group: [f.name for f in feats] for group, feats in schema.groups.items()}
    assert names["user"] == ["user_id", "gender", "age", "occupation", "region", "hist"]
    assert names["item"] == ["item_id", "category", "decade"]
    assert {"behavior", "negatives", "long"} <= set(names)  # a category and a log: behaviour models can run
    assert schema.labels == ("click",) and schema.values == ("rating",) and not schema.funnel
    assert schema.feature("age").vocab_size == len(AGE_BANDS) + 1


def test_both_variants_map_onto_the_same_tables(ml1m, ml100k):
    """The same data in either layout gives the same features, ids, interactions and ranking rows."""
    u1, u2 = read(ml1m, "users"), read(ml100k, "users")
    for col in ("user_id", "gender", "age", "region"):
        assert u1[col].tolist() == u2[col].tolist(), col
    # occupation: ML-1M's codes, ML-100K's words; the same users share one
    assert len(set(zip(u1["occupation"], u2["occupation"]))) == u1["occupation"].nunique() == u2["occupation"].nunique()
    assert read(ml1m, "items").equals(read(ml100k, "items"))
    for split in ("train", "valid", "test"):  # the files order ratings differently: compare as sets
        cols = ["user_id", "item_id", "ts", "click", "rating"]
        a, b = (read(r, f"ranking_{split}")[cols].sort_values(cols).reset_index(drop=True) for r in (ml1m, ml100k))
        assert a.equals(b), split
    events = [pd.concat([read(r, "recall_train"), read(r, "recall_test")]) for r in (ml1m, ml100k)]
    key = ["user_id", "item_id", "ts"]
    assert events[0][key].sort_values(key).reset_index(drop=True).equals(
        events[1][key].sort_values(key).reset_index(drop=True))


# --- the preprocessing rules ----------------------------------------------------------------------------


def test_age_in_years_falls_into_the_ml1m_bands(ml1m, tmp_path):
    """ML-1M's codes stay as they are; ML-100K's ages at every band edge take the band's code."""
    assert set(vocab(ml1m, "age").values()) <= set(AGE_BANDS)
    root = project(tmp_path, "ml-100k", run=False)
    path = root / "raw" / "u.user"
    lines = path.read_text().splitlines()
    ages = [7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73]
    bands = [1, 1, 18, 18, 25, 25, 35, 35, 45, 45, 50, 50, 56, 56]
    for k, age in enumerate(ages):
        fields = lines[k].split("|")
        fields[1] = str(age)
        lines[k] = "|".join(fields)
    path.write_text("\n".join(lines) + "\n")
    run_stage("ingest", root=root)
    users, names = read(root, "users"), vocab(root, "age")
    assert [names[a] for a in users["age"][: len(ages)]] == bands


def test_region_is_the_zip_codes_first_character(ingested):
    variant, root = ingested
    sep = "::" if variant == "ml-1m" else "|"
    zips = [line.split(sep)[-1] for line in (root / "raw" / FILES[variant][1]).read_text().splitlines()]
    assert any(not z[0].isdigit() for z in zips) and any("-" in z for z in zips)  # Canadian, ZIP+4
    names = vocab(root, "region")
    assert [names[r] for r in read(root, "users")["region"]] == [z[0] for z in zips]


def test_category_is_the_first_listed_genre_and_decade_the_titles(ml1m):
    """Including titles with bare quotes, inner parentheses and Latin-1 letters (quote '' and latin-1)."""
    lines = (ml1m / "raw" / "movies.dat").read_bytes().decode("latin-1").splitlines()
    odd = [line for line in lines if '"' in line]
    assert odd and all("\u00e9" in line and "(Le film" in line for line in odd)
    items = read(ml1m, "items")
    category, decade = vocab(ml1m, "category"), vocab(ml1m, "decade")
    expected = [(g.split("|")[0], f"{t[-5:-2]}0s") for _, t, g in (line.split("::") for line in lines)]
    assert [(category[c], decade[d]) for c, d in zip(items["category"], items["decade"])] == expected
    assert sum(g.count("|") for _, _, g in (line.split("::") for line in lines)) > 0  # several genres listed


def test_ml100k_genre_flags_and_release_dates(tmp_path):
    """The first flag set is the category ('unknown' is a flag too); no year in the title: the release
    date's; neither: no decade. Movies nobody rated leave the catalogue."""
    root = project(tmp_path, "ml-100k", run=False)
    flags = ["0"] * 19
    western = flags[:18] + ["1"]
    unknown = ["1"] + flags[1:]
    with open(root / "raw" / "u.item", "ab") as f:
        f.write(("998|Untitled|01-Jan-1977||http://x|" + "|".join(western) + "\n").encode("latin-1"))
        f.write(("999|unknown||||" + "|".join(unknown) + "\n").encode("latin-1"))
        f.write(("997|Unrated (1990)||||" + "|".join(unknown) + "\n").encode("latin-1"))
    user = (root / "raw" / "u.data").read_text().split("\t", 1)[0]
    with open(root / "raw" / "u.data", "a") as f:
        f.write(f"{user}\t998\t4\t874965758\n{user}\t999\t2\t874965759\n")
    run_stage("ingest", root=root)
    items = read(root, "items")
    assert len(items) == 202
    assert 997 not in vocab(root, "item_id").values()
    ids = {raw: i for i, raw in vocab(root, "item_id").items()}
    category, decade = vocab(root, "category"), vocab(root, "decade")
    rows = items.set_index("item_id")
    assert category[rows.loc[ids[998], "category"]] == "Western" and decade[rows.loc[ids[998], "decade"]] == "1970s"
    assert category[rows.loc[ids[999], "category"]] == "unknown" and rows.loc[ids[999], "decade"] == 0


def test_each_users_ratings_in_time_order_ties_in_file_order(ingested):
    """The files are not in time order; leave-one-out holds out each user's last rating (by time, then line)."""
    variant, root = ingested
    ratings = raw_ratings(root, variant)
    assert not ratings.equals(ratings.sort_values(["user", "ts", "line"]))  # the file's order is not the time's
    assert ratings.duplicated(["user", "ts"]).any()  # ratings in the same second
    expected = ratings.sort_values(["user", "ts", "line"]).groupby("user")["item"].apply(list)
    users, items = vocab(root, "user_id"), vocab(root, "item_id")
    test = read(root, "recall_test")
    assert test["user_id"].is_unique and len(test) == len(expected)
    for row in test.itertuples():
        seq = expected[users[row.user_id]]
        assert items[row.item_id] == seq[-1]
        assert [items[i] for i in row.hist] == seq[-1 - HISTORY_LEN:-1]


def test_click_is_rating_at_least_the_threshold(ml100k, tmp_path):
    def clicks(root: Path) -> pd.DataFrame:
        rows = pd.concat([read(root, f"ranking_{s}") for s in ("train", "valid", "test")])
        assert set(rows["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        return rows

    rows = clicks(ml100k)
    assert (rows["click"] == (rows["rating"] >= 4)).all()
    ratings = raw_ratings(ml100k, "ml-100k")
    assert rows["click"].sum() == (ratings["rating"] >= 4).sum()
    low = project(tmp_path, "ml-100k", movielens={"variant": "ml-100k", "click_threshold": 2})
    rows = clicks(low)
    assert (rows["click"] == (rows["rating"] >= 2)).all() and rows["click"].sum() == (ratings["rating"] >= 2).sum()


def test_ranking_rows_split_by_time_with_history_before_them(ml1m):
    """Each ranking row's history is its user's ratings strictly before it (not the rated movie itself)."""
    tr, va, te = (read(ml1m, f"ranking_{s}") for s in ("train", "valid", "test"))
    assert tr["ts"].max() <= va["ts"].min() and va["ts"].max() <= te["ts"].min()
    assert 0 < tr["click"].mean() < 1
    ratings = raw_ratings(ml1m, "ml-1m").sort_values(["user", "ts", "line"])
    users, items = vocab(ml1m, "user_id"), vocab(ml1m, "item_id")
    for row in te.itertuples():
        mine = ratings[ratings["user"] == users[row.user_id]]
        before = mine[mine["ts"] < row.ts]["item"].tolist()[-HISTORY_LEN:]
        assert [items[i] for i in row.hist] == before


# --- malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant, file, line, text, message", [
    ("ml-1m", 0, 7, b"1::2::3", "ratings.dat: line 7: Expected Number of Columns: 4 Found: 3"),
    ("ml-1m", 0, 4, b"1::abc::3::978300760", "ratings.dat: column 'item_id' line 4: 'abc' is not a valid bigint"),
    ("ml-1m", 1, 5, b"5::\xff\xfe::25::4::55455", "users.dat: line 5: Invalid unicode"),
    ("ml-1m", 0, 9, b"1::2::4.5::978300760", "ratings.dat: column 'rating' line 9: '4.5' is not a valid integer"),
    ("ml-100k", 0, 3, b"1\t2\t3\t4\t5", "u.data: line 3: Expected Number of Columns: 4 Found: 5"),
    ("ml-100k", 2, 6, b"6|Movie|01-Jan-1990||x|0|1", "u.item: line 6: Expected Number of Columns: 24 Found: 7"),
    ("ml-100k", 1, 2, b"2|x|F|artist|12345", "u.user: column 'age' line 2: 'x' is not a valid integer"),
])
def test_malformed_line_names_file_and_line(tmp_path, variant, file, line, text, message):
    root = project(tmp_path, variant, run=False)
    replace_line(root / "raw" / FILES[variant][file], line, text)
    with pytest.raises(DataError, match="^" + re.escape(str(root / "raw" / message))):
        run_stage("ingest", root=root)


def test_skip_counts_malformed_ratings_and_keeps_the_rest(tmp_path):
    root = project(tmp_path, "ml-1m", run=False, bad_rows="skip")
    path = root / "raw" / "ratings.dat"
    n_ratings = n_lines(path)
    replace_line(path, 7, b"1::2::3")
    replace_line(path, 9, b"1::abc::3::978300760")
    replace_line(path, 11, b"1::2::\xff::978300760")  # ASCII file read as UTF-8: a stray byte is caught
    run_stage("ingest", root=root)
    meta = json.loads((root / "data/processed/meta.json").read_text())
    assert meta["skipped_rows"] == [{"file": "ratings.dat", "table": "ratings", "rows": 3, "lines": [7, 9, 11],
                                     "reasons": {"missing columns": 1, "item_id: not a valid bigint": 1,
                                                 "invalid encoding": 1}}]
    assert meta["rows"]["recall_train"] + meta["rows"]["recall_test"] == n_ratings - 3
    assert sum(meta["rows"][f"ranking_{s}"] for s in ("train", "valid", "test")) == n_ratings - 3


@pytest.mark.parametrize("variant, name", [("ml-1m", "movies.dat"), ("ml-1m", "ratings.dat"), ("ml-100k", "u.user")])
def test_missing_file_is_named(tmp_path, variant, name):
    root = project(tmp_path, variant, run=False)
    (root / "raw" / name).unlink()
    with pytest.raises(DataError, match=f"{name}: missing raw file .*unzip {variant}.zip"):
        run_stage("ingest", root=root)


def test_a_rating_of_a_movie_not_in_the_movies_file(tmp_path):
    root = project(tmp_path, "ml-1m", run=False)
    replace_line(root / "raw" / "ratings.dat", 2, b"1::99999::3::978300760")
    with pytest.raises(DataError, match=r"ratings.dat: column 'item_id' line 2: 99999 is not in the items file "
                                        r"\(.*movies.dat\)"):
        run_stage("ingest", root=root)
