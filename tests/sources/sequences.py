"""A tiny sequence file in SASRec's ``pairs`` layout (``user item`` per line) or S3-Rec's ``lists`` layout
(``user item item ...`` per line).

Planted structure: items form four groups, each a chain; a user mostly steps to the next item of their
group's chain (else jumps to a random item), so the next item is predictable from the last one. Ids are
numbered from 1 as in the released files; sequences are 6-30 long and may repeat an item (kept as events).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILE = "tiny.txt"


def sequences(seed: int = 0, n_users: int = 200, n_items: int = 200, groups: int = 4) -> list[list[int]]:
    """Each user's items in time order (user ``u`` is ``u + 1``)."""
    rng = np.random.default_rng(seed)
    per_group = n_items // groups
    out = []
    for u in range(n_users):
        group = u % groups
        pos = int(rng.integers(0, per_group))
        seq = []
        for _ in range(int(rng.integers(6, 31))):
            if rng.random() < 0.8:
                pos = (pos + 1) % per_group
                seq.append(1 + group * per_group + pos)
            else:
                seq.append(int(rng.integers(1, n_items + 1)))
        out.append(seq)
    return out


def write(raw_dir: Path, format: str = "pairs", *, seed: int = 0, n_users: int = 200, n_items: int = 200,
          file: str = FILE) -> dict:
    """Write the sequences into ``raw_dir / file`` in ``format``; returns the ingest params that read it."""
    seqs = sequences(seed, n_users, n_items)
    if format == "pairs":  # as SASRec's files: a user's lines together, in time order
        text = "".join(f"{u + 1} {item}\n" for u, seq in enumerate(seqs) for item in seq)
    elif format == "lists":
        text = "".join(f"{u + 1} {' '.join(map(str, seq))}\n" for u, seq in enumerate(seqs))
    else:
        raise ValueError(f"format {format!r}: pairs | lists")
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / file).write_text(text)
    return {"source": "sequences", "raw_dir": str(raw_dir), "sequences": {"file": file, "format": format}}
