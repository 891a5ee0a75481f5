"""``source: movielens``: the MovieLens 1M and 100K rating data sets, as GroupLens distributes them.

Files, in ``ingest.raw_dir`` (the unzipped folder; nothing is downloaded by rechub):

- ``variant: ml-1m`` — ``ml-1m.zip`` from https://grouplens.org/datasets/movielens/1m/ (6,040 users,
  3,706 rated movies, 1,000,209 ratings): ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``),
  ``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``; Age is a band code 1, 18, 25, 35, 45,
  50, 56; Occupation a code 0-20) and ``movies.dat`` (``MovieID::Title::Genres``, the title ending in
  its year, genres ``|``-separated). ``::``-separated, no header, no quoting (titles hold bare quotes);
  movies.dat is Latin-1, the other two ASCII (read as UTF-8, so a stray byte is reported, not read).
- ``variant: ml-100k`` — ``ml-100k.zip`` from https://grouplens.org/datasets/movielens/100k/ (943
  users, 1,682 movies, 100,000 ratings): ``u.data`` (tab-separated ``user item rating timestamp``),
  ``u.user`` (``id|age|gender|occupation|zip``, the age in years, the occupation a word) and ``u.item``
  (``id|title|release date|video release date|IMDb URL|`` then 19 genre flags 0/1 in the order of
  ``u.genre``, unknown to Western; Latin-1).

Both variants map onto the same tables and feature names, so one model config trains on either:

- users: ``gender``; ``age``, ML-1M's band code (ML-100K's age in years falls into the same bands: the
  codes are the bands' lower ends, so one rule maps both); ``occupation`` (ML-1M's code, ML-100K's word);
  ``region``, the zip code's first character (a US zip's first digit is its national area; ML-100K has
  Canadian postcodes and ML-1M ZIP+4 codes, kept as text). All categorical.
- items: ``category``, the first listed genre (ingest's behaviour models read an item feature of that
  name; both variants list genres alphabetically, ML-100K by its flag columns), and ``decade`` (e.g.
  ``1990s``) of the year in the title (ML-100K: else of the release date).
- interactions: every rating, whatever its value, at its timestamp — the implicit-feedback reading of
  SASRec (Kang & McAuley, ICDM 2018) and BERT4Rec (Sun et al., CIKM 2019), which order each user's
  ratings by time (ratings of one second keep the file's order) and evaluate leave-one-out: ingest's
  ``recall_split: leave_one_out`` holds out each user's last rating.
- impressions (ranking and multi-task rows): every rating again, labelled ``click`` = rating >=
  ``movielens.click_threshold`` and the real-valued ``rating`` (train_mtl can learn [click, rating]);
  split by time (``ingest.ranking_split``). One binary label, so no funnel.
- behaviours: no separate browsing log: the ratings are the long history too.

The catalogue is the movies somebody rated (a movie of the movies file nobody rated is left out, as
the papers' data sets leave it out); every rating's user and movie must be in the users and movies
files (ingest checks it and names the rating's line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from components.sources.base import Categorical, RawFormat, RawTable, Source, ident, load_file, require_file

AGE_BANDS = (1, 18, 25, 35, 45, 50, 56)  # ML-1M's age codes: the lower ends of its bands ("Under 18", "18-24", ...)
# ML-100K's u.genre, in the order of u.item's flag columns (alphabetical after "unknown")
GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
               "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
               "War", "Western")
FLAGS = tuple(f"genre_{i}" for i in range(len(GENRES_100K)))
TITLE_YEAR = r"\((\d{4})\)\s*$"  # "Toy Story (1995)", "Cité des enfants perdus, La (1995)"

RATINGS = {"user_id": "BIGINT", "item_id": "BIGINT", "rating": "INTEGER", "ts": "BIGINT"}


@dataclass(frozen=True)
class _File:
    name: str  # in raw_dir
    what: str  # for the missing-file message
    spec: RawTable
    fmt: RawFormat


@dataclass(frozen=True)
class _Variant:
    ratings: _File
    users: _File
    items: _File
    items_sql: str  # SELECT of raw_items (item_id, category, decade, line) from ml_items


def _decade(year: str) -> str:
    """SQL: the decade label ('1990s') of an integer year expression; NULL for NULL."""
    return f"CAST({year} // 10 * 10 AS VARCHAR) || 's'"


def _title_year(col: str = "title") -> str:
    return f"TRY_CAST(nullif(regexp_extract({col}, '{TITLE_YEAR}', 1), '') AS INTEGER)"


def _ml_1m() -> _Variant:
    return _Variant(
        ratings=_File("ratings.dat", "UserID::MovieID::Rating::Timestamp",
                      RawTable("ratings", RATINGS, tuple(RATINGS)),
                      RawFormat(delim="::", header=False, quote="", names=tuple(RATINGS))),
        users=_File("users.dat", "UserID::Gender::Age::Occupation::Zip-code",
                    RawTable("users", {"user_id": "BIGINT", "gender": "VARCHAR", "age": "INTEGER",
                                       "occupation": "INTEGER", "zip": "VARCHAR"}, ("user_id",)),
                    RawFormat(delim="::", header=False, quote="",
                              names=("user_id", "gender", "age", "occupation", "zip"))),
        items=_File("movies.dat", "MovieID::Title::Genres, Latin-1",
                    RawTable("movies", {"item_id": "BIGINT", "title": "VARCHAR", "genres": "VARCHAR"}, ("item_id",)),
                    RawFormat(delim="::", header=False, quote="", encoding="latin-1",
                              names=("item_id", "title", "genres"))),
        items_sql=f"""SELECT item_id, nullif(trim(split_part(genres, '|', 1)), '') AS category,
                             {_decade(_title_year())} AS decade, line
                      FROM ml_items""",
    )


def _ml_100k() -> _Variant:
    first_genre = "CASE " + " ".join(f"WHEN {ident(flag)} = 1 THEN '{genre.replace(chr(39), chr(39) * 2)}'"
                                     for flag, genre in zip(FLAGS, GENRES_100K)) + " END"
    release_year = "TRY_CAST(nullif(regexp_extract(release_date, '(\\d{4})\\s*$', 1), '') AS INTEGER)"
    item_cols = {"item_id": "BIGINT", "title": "VARCHAR", "release_date": "VARCHAR", "video_release_date": "VARCHAR",
                 "imdb_url": "VARCHAR", **{flag: "INTEGER" for flag in FLAGS}}
    return _Variant(
        ratings=_File("u.data", "tab-separated user item rating timestamp",
                      RawTable("ratings", RATINGS, tuple(RATINGS)),
                      RawFormat(delim="\t", header=False, quote="", names=tuple(RATINGS))),
        users=_File("u.user", "user id|age|gender|occupation|zip code",
                    RawTable("users", {"user_id": "BIGINT", "age": "INTEGER", "gender": "VARCHAR",
                                       "occupation": "VARCHAR", "zip": "VARCHAR"}, ("user_id",)),
                    RawFormat(delim="|", header=False, quote="",
                              names=("user_id", "age", "gender", "occupation", "zip"))),
        items=_File("u.item", "movie id|title|release date|video release date|IMDb URL|19 genre flags, Latin-1",
                    RawTable("movies", item_cols, ("item_id", *FLAGS)),
                    RawFormat(delim="|", header=False, quote="", encoding="latin-1", names=tuple(item_cols))),
        items_sql=f"""SELECT item_id, {first_genre} AS category,
                             {_decade(f"coalesce({_title_year()}, {release_year})")} AS decade, line
                      FROM ml_items""",
    )


VARIANTS = {"ml-1m": _ml_1m, "ml-100k": _ml_100k}


def age_band(col: str) -> str:
    """SQL: the ML-1M band code of an age in years (a band code maps onto itself)."""
    cases = " ".join(f"WHEN {col} < {hi} THEN {lo}" for lo, hi in zip(AGE_BANDS, AGE_BANDS[1:]))
    return f"CASE WHEN {col} IS NULL THEN NULL {cases} ELSE {AGE_BANDS[-1]} END"


def read(con: duckdb.DuckDBPyConnection, params, raw_dir: Path) -> Source:
    settings = params.movielens
    variant = VARIANTS[settings.variant]()
    hint = f"; unzip {settings.variant}.zip from grouplens.org and set ingest.raw_dir to its folder"
    files, skipped = {}, []
    for key, file in (("ratings", variant.ratings), ("users", variant.users), ("items", variant.items)):
        path = require_file(raw_dir, file.name, f"MovieLens {settings.variant}: {file.what}{hint}")
        files[key] = path
        if (s := load_file(con, path, file.spec, file.fmt, params.bad_rows, into=f"ml_{key}")) is not None:
            skipped.append(s)

    con.execute(f"""
        CREATE TABLE raw_users AS
        SELECT user_id,
               nullif(upper(trim(gender)), '') AS gender,
               {age_band('age')} AS age,
               nullif(trim(CAST(occupation AS VARCHAR)), '') AS occupation,
               nullif(upper(left(trim(zip), 1)), '') AS region,
               line
        FROM ml_users""")
    # the catalogue is the rated movies, as in the papers' data sets (ML-1M: 3,706 of the movies file's 3,883):
    # a movie nobody rated would be a sampled negative no model has seen, easier than any the papers rank
    con.execute(f"CREATE TABLE raw_items AS SELECT * FROM ({variant.items_sql}) "
                "WHERE item_id IN (SELECT item_id FROM ml_ratings)")
    # implicit feedback: every rating is an interaction, and the long log; every rating is a labelled row too
    con.execute("CREATE TABLE raw_interactions AS SELECT user_id, item_id, ts, line FROM ml_ratings")
    con.execute("CREATE TABLE raw_behaviors AS SELECT user_id, item_id, ts, line FROM ml_ratings")
    con.execute(f"""
        CREATE TABLE raw_impressions AS
        SELECT user_id, item_id, ts, CAST(rating >= {int(settings.click_threshold)} AS INTEGER) AS click,
               CAST(rating AS DOUBLE) AS rating, line
        FROM ml_ratings""")
    n_ratings, clicks = con.execute("SELECT count(*), sum(click) FROM raw_impressions").fetchone()
    ratings = files["ratings"]
    return Source(
        name="movielens",
        tables={"users", "items", "interactions", "impressions", "behaviors"},
        files={"users": files["users"], "items": files["items"], "interactions": ratings,
               "impressions": ratings, "behaviors": ratings},
        user=(Categorical("gender"), Categorical("age"), Categorical("occupation"), Categorical("region")),
        item=(Categorical("category"), Categorical("decade")),
        labels=("click",),
        funnel=False,
        values=("rating",),
        skipped=skipped,
        notes={"movielens": {"variant": settings.variant, "ratings": n_ratings,
                             "click_threshold": settings.click_threshold,
                             "click_rate": round(clicks / n_ratings, 4) if n_ratings else 0.0}},
    )
