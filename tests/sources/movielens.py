"""A tiny MovieLens data set in the real ML-1M (``::``-separated .dat) or ML-100K (``u.*``) layout.

The same users, movies and ratings in either variant (``write(raw_dir, variant="ml-100k")``), so a test can
check both map onto the same tables. Planted structure: each user has a favourite genre, follows a chain
of that genre's movies in time (the next movie after the one before, else a random one) and rates the
favourite genre's movies higher (the rating also rises with the movie's quality and the user's
leniency); the favourite genre shows in the user's occupation and zip code. Users overlap in time, so
the time-split ranking rows belong to users with training rows.
Real-format quirks: sparse movie ids, titles with bare quotes, inner parentheses and Latin-1 letters,
Canadian postcodes and ZIP+4 codes, several ratings in one second, ratings.dat grouped by user but not in
time order within a user, u.data in no order at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = ("Action", "Animation", "Comedy", "Drama", "Horror", "Sci-Fi")  # the planted favourite genres
GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
               "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
               "War", "Western")
OCCUPATIONS = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
               "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
               "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
               "tradesman/craftsman", "unemployed", "writer")  # ML-1M's codes 0-20; ML-100K writes the word
AGE_BANDS = {1: (7, 17), 18: (18, 24), 25: (25, 34), 35: (35, 44), 45: (45, 49), 50: (50, 55), 56: (56, 73)}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CANADIAN = ("T8H1N", "V3N4P", "E2A4H", "L9G2B")


def movies(rng: np.random.Generator, n_items: int) -> list[dict]:
    ids = np.sort(rng.choice(np.arange(1, 4 * n_items), n_items, replace=False))
    out = []
    for k, movie_id in enumerate(ids):
        genre = k % len(GENRES)
        later = [g for g in GENRES_100K[1:] if g > GENRES[genre]]  # listed after the primary one: it stays first
        genres = [GENRES[genre]] + sorted(rng.choice(later, rng.integers(0, 3), replace=False).tolist())
        year = int(1930 + 10 * (genre + rng.integers(0, 2)) + rng.integers(0, 10))  # genres lean to decades
        if k % 17 == 3:
            title = f'"Caf\u00e9" M\u00fcller (Le film {k}) ({year})'  # bare quotes, inner parentheses, Latin-1
        else:
            title = f"Movie {k}, The ({year})"
        out.append({"id": int(movie_id), "title": title, "genres": genres, "year": year, "genre": genre,
                    "quality": float(rng.normal())})
    return out


def users(rng: np.random.Generator, n_users: int) -> list[dict]:
    out = []
    for u in range(n_users):
        favourite = u % len(GENRES)
        band = list(AGE_BANDS)[(favourite + rng.integers(0, 3)) % len(AGE_BANDS)]
        lo, hi = AGE_BANDS[band]
        if u % 11 == 5:
            zip_code = CANADIAN[u % len(CANADIAN)]
        else:
            zip_code = f"{favourite + 1}{rng.integers(0, 10_000):04d}" + ("-1234" if u % 7 == 2 else "")
        out.append({
            "id": u + 1, "favourite": favourite, "gender": "F" if rng.random() < 0.3 + 0.1 * favourite else "M",
            "band": band, "age": int(rng.integers(lo, hi + 1)),
            "occupation": int((3 * favourite + rng.integers(0, 3)) % len(OCCUPATIONS)), "zip": zip_code,
            "bias": float(rng.normal()),
        })
    return out


def ratings(rng: np.random.Generator, people: list[dict], films: list[dict]) -> list[tuple[int, int, int, int]]:
    """(user, movie, rating, timestamp) rows, grouped by user, each user's rows shuffled."""
    by_genre = [[m for m in films if m["genre"] == g] for g in range(len(GENRES))]
    rows = []
    for person in people:
        chain = by_genre[person["favourite"]]
        n = int(rng.integers(12, 36))
        pos = int(rng.integers(0, len(chain)))
        seen: set[int] = set()
        ts = 956_703_932 + int(rng.integers(0, 2_000_000))  # users overlap in time: each split has most of them
        user_rows = []
        for _ in range(n):
            if rng.random() < 0.75:
                pos = (pos + 1) % len(chain)
                movie = chain[pos]
            else:
                movie = films[int(rng.integers(0, len(films)))]
            if movie["id"] in seen:
                left = [m for m in films if m["id"] not in seen]
                movie = left[int(rng.integers(0, len(left)))]
            seen.add(movie["id"])
            liked = movie["genre"] == person["favourite"]
            score = 1.6 + 2.0 * liked + 0.8 * movie["quality"] + 0.4 * person["bias"] + rng.normal(0, 0.6)
            rating = int(np.clip(np.rint(score), 1, 5))
            user_rows.append((person["id"], movie["id"], rating, ts))
            ts += 0 if rng.random() < 0.2 else int(rng.integers(1, 400_000))  # some ratings share a second
        rows += [user_rows[i] for i in rng.permutation(len(user_rows))]
    return rows


def write(raw_dir: Path, variant: str = "ml-1m", *, seed: int = 0, n_users: int = 150, n_items: int = 200,
          click_threshold: int = 4) -> dict:
    """Write the data set into ``raw_dir`` in ``variant``'s layout; returns the ingest params that read it."""
    rng = np.random.default_rng(seed)
    films = movies(rng, n_items)
    people = users(rng, n_users)
    rows = ratings(rng, people, films)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if variant == "ml-1m":
        (raw_dir / "ratings.dat").write_bytes("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows).encode())
        (raw_dir / "users.dat").write_bytes("".join(
            f"{p['id']}::{p['gender']}::{p['band']}::{p['occupation']}::{p['zip']}\n" for p in people).encode())
        (raw_dir / "movies.dat").write_bytes("".join(
            f"{m['id']}::{m['title']}::{'|'.join(m['genres'])}\n" for m in films).encode("latin-1"))
    elif variant == "ml-100k":
        order = rng.permutation(len(rows))  # u.data is in no particular order
        (raw_dir / "u.data").write_bytes("".join("{}\t{}\t{}\t{}\n".format(*rows[k]) for k in order).encode())
        (raw_dir / "u.user").write_bytes("".join(
            f"{p['id']}|{p['age']}|{p['gender']}|{OCCUPATIONS[p['occupation']]}|{p['zip']}\n" for p in people).encode())
        lines = []
        for m in films:
            flags = "|".join("1" if g in m["genres"] else "0" for g in GENRES_100K)
            date = f"{1 + m['id'] % 28:02d}-{MONTHS[m['id'] % 12]}-{m['year']}"
            url = "http://us.imdb.com/M/title-exact?" + m["title"].replace(" ", "%20")
            lines.append(f"{m['id']}|{m['title']}|{date}||{url}|{flags}\n")
        (raw_dir / "u.item").write_bytes("".join(lines).encode("latin-1"))
    else:
        raise ValueError(f"variant {variant!r}: ml-1m | ml-100k")
    return {"source": "movielens", "raw_dir": str(raw_dir),
            "movielens": {"variant": variant, "click_threshold": click_threshold}}
