"""A tiny e-commerce event log for ``source: generic``: impressions with clicks, purchases and dwell times.

One row per impression: ``visitor`` (text ids ``v0001``...), ``sku`` (integer
ids), ``event_time`` (epoch seconds, ISO text / a Parquet TIMESTAMP, or none:
the file's order), the user's ``country`` and ``age``, the item's
``category``, ``brand`` and ``price``, the impression's ``device`` and
``position``, the labels ``click`` and ``purchase`` (a purchase only after a
click) and the real-valued ``dwell`` (seconds on the page, 0 without a click).

Planted structure: each user prefers one of six categories, which most of
their impressions come from and which they click far more often; a click is
likelier high on the page and in the app; a purchase likelier for the
preferred category; dwell is longer on preferred items and purchases; a
third of the impressions show the next item (by sku) of the previous one.

Side features change over time, so the reader's "first value by time" rule is
visible: some users move country halfway, prices drop by a fifth in the last
third of the log, and some users' ages are missing on their first rows. With
a time column the rows are written shuffled (an export not sorted by time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["visitor", "sku", "event_time", "country", "age", "category", "brand", "price", "device", "position",
           "click", "purchase", "dwell"]
CATEGORIES = ["books", "garden", "toys", "music", "sports", "kitchen"]
COUNTRIES = ["DE", "FR", "NL", "PL", "ES"]
DEVICES = ["mobile", "desktop", "app"]
N_USERS, ITEMS_PER_CATEGORY = 150, 15
START = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def events(seed: int = 0) -> pd.DataFrame:
    """The log, in time order (``event_time`` in epoch seconds)."""
    rng = np.random.default_rng(seed)
    n_items = len(CATEGORIES) * ITEMS_PER_CATEGORY
    per_user = rng.integers(12, 29, N_USERS)
    user = np.repeat(np.arange(N_USERS), per_user)
    n = len(user)
    first = np.repeat(np.cumsum(per_user) - per_user, per_user)
    k = np.arange(n) - first  # the event's index within its user

    liked = rng.integers(0, len(CATEGORIES), N_USERS)  # preferred category
    cat = np.where(rng.random(n) < 0.65, liked[user], rng.integers(0, len(CATEGORIES), n))
    zipf = 1.0 / np.arange(1, ITEMS_PER_CATEGORY + 1)
    item = cat * ITEMS_PER_CATEGORY + rng.choice(ITEMS_PER_CATEGORY, n, p=zipf / zipf.sum())
    successor = (k > 0) & (rng.random(n) < 0.33)  # the next sku of the previous impression, same category
    prev = np.roll(item, 1)
    item = np.where(successor, (prev // ITEMS_PER_CATEGORY) * ITEMS_PER_CATEGORY + (prev + 1) % ITEMS_PER_CATEGORY,
                    item)
    cat = item // ITEMS_PER_CATEGORY
    pref = (cat == liked[user]).astype(float)

    gaps = rng.exponential(86400.0, n).astype(np.int64) + 1  # about a day apart: users overlap in time
    gaps[k == 0] = 0
    t = np.repeat(START + rng.integers(0, 5 * 86400, N_USERS), per_user) + pd.Series(gaps).groupby(user).cumsum().to_numpy()

    own_device = rng.integers(0, len(DEVICES), N_USERS)
    device = np.where(rng.random(n) < 0.7, own_device[user], rng.integers(0, len(DEVICES), n))
    position = rng.integers(1, 11, n)
    quality = rng.normal(0.0, 0.5, n_items)
    click_logit = -1.0 + 1.8 * pref - 0.18 * (position - 1) + 0.4 * (device == 2) + quality[item]
    click = (rng.random(n) < 1 / (1 + np.exp(-click_logit))).astype(np.int64)
    purchase = click * (rng.random(n) < 1 / (1 + np.exp(-(-0.8 + 0.9 * pref)))).astype(np.int64)
    dwell = np.where(click == 1, np.round(np.exp(rng.normal(3.0 + 0.6 * pref + 0.5 * purchase, 0.4)), 1), 0.0)

    country = rng.integers(0, len(COUNTRIES), N_USERS)
    moved = rng.random(N_USERS) < 0.2
    later = k >= per_user[user] // 2
    row_country = np.where(moved[user] & later, (country[user] + 1) % len(COUNTRIES), country[user])
    age = pd.array(rng.integers(18, 71, N_USERS)[user], dtype="Int64")
    age[(k < 2) & (rng.random(N_USERS) < 0.15)[user]] = pd.NA  # not yet known on some users' first rows
    base_price = np.round(rng.lognormal(3.0, 0.6, n_items), 2)
    cut = np.quantile(t, 2 / 3)
    price = np.round(base_price[item] * np.where(t >= cut, 0.8, 1.0), 2)

    frame = pd.DataFrame({
        "visitor": [f"v{u:04d}" for u in range(1, N_USERS + 1)],
    }).iloc[user].reset_index(drop=True)
    frame["sku"] = 1000 + item
    frame["event_time"] = t
    frame["country"] = np.asarray(COUNTRIES)[row_country]
    frame["age"] = age
    frame["category"] = np.asarray(CATEGORIES)[cat]
    frame["brand"] = np.char.add("b", (item % 11).astype(str))
    frame["price"] = price
    frame["device"] = np.asarray(DEVICES)[device]
    frame["position"] = position
    frame["click"] = click
    frame["purchase"] = purchase
    frame["dwell"] = dwell
    return frame.sort_values(["event_time", "visitor"], kind="stable").reset_index(drop=True)


def params(raw_dir: Path, file: str, time: str | None) -> dict:
    """The ``ingest`` overrides reading ``file`` of ``raw_dir``."""
    return {
        "source": "generic",
        "raw_dir": str(raw_dir),
        "generic": {
            "file": file,
            "user": "visitor",
            "item": "sku",
            "time": time,
            "labels": ["click", "purchase"],
            "values": ["dwell"],
            "user_features": {"country": "categorical", "age": "numeric"},
            "item_features": {"category": "categorical", "brand": "categorical", "price": "numeric"},
            "context_features": {"device": "categorical", "position": "numeric"},
            "interactions": "positive",
        },
    }


def write(raw_dir: Path, kind: str = "csv", time: str = "epoch", seed: int = 0) -> dict:
    """Write the log as ``events.csv`` or ``events.parquet`` into ``raw_dir``; returns the ingest overrides.

    ``time``: ``epoch`` (integer seconds), ``iso`` (text ``2023-11-14 22:13:20`` in a CSV file, a TIMESTAMP
    column in Parquet) or ``none`` (no time column: the rows in time order, the file's order is the time).
    """
    if kind not in ("csv", "parquet") or time not in ("epoch", "iso", "none"):
        raise ValueError(f"kind: csv | parquet, time: epoch | iso | none; got {kind!r}, {time!r}")
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    frame = events(seed)
    if time == "none":
        frame = frame.drop(columns="event_time")
    else:
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # an export in no particular order
        if time == "iso":
            stamps = pd.to_datetime(frame["event_time"], unit="s")
            frame["event_time"] = stamps.dt.strftime("%Y-%m-%d %H:%M:%S") if kind == "csv" else stamps
    file = f"events.{kind}"
    if kind == "csv":
        frame.to_csv(raw_dir / file, index=False)
    else:
        frame.to_parquet(raw_dir / file, index=False)
    return params(raw_dir, file, None if time == "none" else "event_time")
