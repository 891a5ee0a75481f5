"""Tiny YOOCHOOSE / DIGINETICA click logs in their real formats, with a planted next-item structure.

Items form chains (8 chains of 10): a session starts at a popular item and mostly steps to the
next item of its chain, so the next click is predictable from the last. The log also holds what
the papers' preparation removes: sessions of one click, rare items (fewer than 5 clicks), and
items clicked only in the test period.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

FILES = {"yoochoose": "yoochoose-clicks.dat", "diginetica": "train-item-views.csv"}
TEST_DAYS = {"yoochoose": 1, "diginetica": 7}
DAYS = {"yoochoose": 6, "diginetica": 28}  # the log's span: a test period and a longer training one
START = {"yoochoose": datetime(2014, 4, 1, tzinfo=timezone.utc),
         "diginetica": datetime(2016, 5, 1, tzinfo=timezone.utc)}
ITEM_BASE = {"yoochoose": 214_500_000, "diginetica": 10_000}
CHAINS, CHAIN_LEN = 8, 10
RARE_ITEMS, RARE_CLICKS = 8, 20  # 2-3 clicks each
NEW_ITEMS, NEW_CLICKS = 2, 6  # clicked in the test period only


def sessions(dataset: str, seed: int, n_sessions: int) -> list[tuple[int, datetime, list[int], list[int]]]:
    """(session id, start, items, milliseconds after the start) per session, in id order."""
    rng = np.random.default_rng(seed)
    n_items = CHAINS * CHAIN_LEN
    popularity = 1.0 / np.arange(1, n_items + 1)
    popularity /= popularity.sum()
    starts = np.sort(rng.uniform(0, DAYS[dataset] * 86400, n_sessions))
    lengths = np.minimum(rng.geometric(0.2, n_sessions), 16)
    out = []
    for sid, (start, length) in enumerate(zip(starts, lengths), start=1):
        item = int(rng.choice(n_items, p=popularity))
        items = [item]
        for _ in range(length - 1):
            if rng.random() < 0.8:  # the next item of its chain
                item = item // CHAIN_LEN * CHAIN_LEN + (item % CHAIN_LEN + 1) % CHAIN_LEN
            else:
                item = int(rng.integers(n_items))
            items.append(item)
        gaps = rng.integers(20_000, 240_000, length)
        gaps[0] = 0
        out.append((sid, START[dataset] + timedelta(seconds=float(start)), items, np.cumsum(gaps).tolist()))
    # rare items replace a few clicks anywhere; new items a few clicks of the last day's sessions
    flat = [(s, k) for s, (_, _, items, _) in enumerate(out) for k in range(len(items))]
    for j, pick in enumerate(rng.choice(len(flat), min(RARE_CLICKS, len(flat)), replace=False)):
        s, k = flat[pick]
        out[s][2][k] = n_items + j % RARE_ITEMS
    last = START[dataset] + timedelta(days=DAYS[dataset] - 1)
    late = [(s, k) for s, k in flat if out[s][1] >= last and len(out[s][2]) > 2 and k > 0]
    for j, pick in enumerate(rng.choice(len(late), min(NEW_ITEMS * NEW_CLICKS, len(late)), replace=False)):
        s, k = late[pick]
        out[s][2][k] = n_items + RARE_ITEMS + j % NEW_ITEMS
    return out


def write(raw_dir: Path, dataset: str = "yoochoose", *, seed: int = 0, n_sessions: int = 400, fraction: int = 1,
          min_item_count: int = 5, test_days: int | None = None) -> dict:
    """Write ``n_sessions`` sessions (about 1,700 clicks) of ``dataset`` into ``raw_dir``; returns the ingest
    params overrides that read them."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    base = ITEM_BASE[dataset]
    lines = [] if dataset == "yoochoose" else ["sessionId;userId;itemId;timeframe;eventdate"]
    for sid, start, items, offsets in sessions(dataset, seed, n_sessions):
        if dataset == "yoochoose":  # one line per click, in time order; category mostly 0, sometimes S
            for item, ms in zip(items, offsets):
                t = start + timedelta(milliseconds=ms)
                cat = "S" if rng.random() < 0.1 else "0"
                lines.append(f"{sid},{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z,{base + item},{cat}")
        else:  # views of a session in shuffled order: their timeframe orders them
            user = "NA" if rng.random() < 0.7 else str(int(rng.integers(1, 1000)))
            first = int(rng.integers(0, 600_000))
            for k in rng.permutation(len(items)):
                lines.append(f"{sid};{user};{base + items[k]};{first + offsets[k]};{start:%Y-%m-%d}")
    (raw_dir / FILES[dataset]).write_text("\n".join(lines) + "\n")
    return {
        "source": "sessions",
        "raw_dir": str(raw_dir),
        "sessions": {"dataset": dataset, "file": FILES[dataset], "min_item_count": min_item_count,
                     "test_days": TEST_DAYS[dataset] if test_days is None else test_days, "fraction": fraction},
    }
