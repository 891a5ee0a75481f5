"""A tiny Criteo click log in the real format (label, I1..I13, C1..C26; tab-separated, no header).

Planted structure a tiny CTR model can learn: the click rate rises with ``I1`` (a count) and depends
on the value of ``C1`` and on whether ``C2`` is one of its frequent values; the other fields are
noise. The layout is the real one's: empty fields (more in some columns than in others), negative
values in ``I2``, Zipf-distributed hashes, and a column (``C3``) of mostly rare values for
``min_count`` to fold into the out-of-vocabulary id.
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import numpy as np

FILE = "train.txt"
EMPTY_RATE = {1: 0.2, 3: 0.05, 6: 0.3, 10: 0.5, 12: 0.7}  # integer column → share of empty fields (others: none)
CATEGORY_SIZES = [8, 12, 600] + [3, 5, 20, 50, 100, 4, 30] * 3 + [2, 9]  # distinct hashes of C1..C26
C1_EFFECT = np.array([2.0, 1.2, 0.5, 0.0, -0.5, -1.0, -1.5, -2.0])  # click log-odds by C1 value, most frequent first


def write(raw_dir: Path, *, rows: int = 3000, seed: int = 0, file: str = FILE, min_count: int = 2) -> dict:
    """Write ``rows`` lines into ``raw_dir/file``; returns the ``ingest`` overrides that read them."""
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    ints = rng.geometric(0.15, size=(13, rows)) - 1  # counts
    ints[1] = rng.integers(-3, 40, size=rows)  # I2: small negatives, as in the real data
    ints[4] = rng.geometric(0.0005, size=rows)  # I5: large counts
    codes = []
    for size in CATEGORY_SIZES:
        p = 1.0 / np.arange(1, size + 1) ** 1.1  # Zipf
        codes.append(rng.choice(size, size=rows, p=p / p.sum()))
    logit = -1.2 + 0.6 * (np.log1p(ints[0]) - 1.5) + C1_EFFECT[codes[0]] + 1.0 * (codes[1] < 3) - 0.5
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    hashes = [np.array([f"{h:08x}" for h in rng.choice(2**32, size=size, replace=False)]) for size in CATEGORY_SIZES]
    fields = [click.astype(str)]
    for j in range(13):
        col = ints[j].astype(str)
        col[rng.random(rows) < EMPTY_RATE.get(j + 1, 0.0)] = ""
        fields.append(col)
    for j, size in enumerate(CATEGORY_SIZES):
        col = hashes[j][codes[j]]
        if j in (5, 11, 20):  # some categorical columns have empty fields
            col[rng.random(rows) < 0.25] = ""
        fields.append(col)
    lines = reduce(lambda a, b: np.char.add(np.char.add(a, "\t"), b), fields)
    (raw_dir / file).write_text("\n".join(lines) + "\n")
    return {"source": "criteo", "raw_dir": str(raw_dir), "criteo": {"file": file, "min_count": min_count}}
