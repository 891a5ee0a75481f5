"""The benchmark's fixed synthetic data, written once per shape and shared by both libraries.

- A Criteo-like CTR table: 13 dense columns (log-transformed, standardised
  counts), 26 sparse columns with cardinalities from 10 to 100,000 and Zipf
  frequencies, and two labels from a hidden model with feature crosses
  (``click``; ``conversion`` for the multi-task model). Last 10% of rows = test.
- An interaction log for recall: the built-in generator's log (clustered,
  drifting interests, next-item transitions) at 50,000 users × 20,000 items,
  20-100 events per user (a user consumes an item once, so a few users end
  with slightly fewer), ids contiguous from 1.

Files (the format the peer runner reads too): ``ctr_train.parquet``,
``ctr_test.parquet``, ``ctr_meta.json``, ``recall_interactions.parquet``,
``recall_meta.json``. Generation is vectorised and chunked, so the
10,000,000-row table is written without holding it in memory twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rechub_core.data.synthetic import SyntheticConfig, generate

N_DENSE, N_SPARSE = 13, 26
DENSE = [f"I{i + 1}" for i in range(N_DENSE)]
SPARSE = [f"C{i + 1}" for i in range(N_SPARSE)]
CHUNK = 500_000  # rows generated and written at a time (one Parquet row group)


@dataclass(frozen=True)
class Shapes:
    ctr_rows: int = 1_000_000
    n_users: int = 50_000
    n_items: int = 20_000
    min_events: int = 20
    max_events: int = 100
    seed: int = 2024


QUICK = Shapes(ctr_rows=100_000, n_users=5_000, n_items=3_000)


def cardinalities() -> list[int]:
    return [int(round(c)) for c in np.geomspace(10, 100_000, N_SPARSE)]


class _HiddenModel:
    """The label model: per-id weights, latent crosses between field pairs, dense terms."""

    PAIRS = [(0, 5), (1, 9), (2, 14), (3, 20), (6, 11), (8, 25), (12, 17), (15, 22)]

    def __init__(self, rng: np.random.Generator, cards: list[int]):
        self.first = [rng.normal(0, 0.4, size=c + 1) for c in cards]
        self.latent = [rng.normal(0, 0.6, size=(c + 1, 4)) for c in cards]
        self.dense_w = rng.normal(0, 0.3, size=N_DENSE)
        self.dense_cross = rng.normal(0, 0.5, size=cards[4] + 1)  # I1 × C5
        self.conv_first = [rng.normal(0, 0.4, size=c + 1) for c in cards[:8]]

    def logits(self, dense: np.ndarray, sparse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        click = -1.2 + dense @ self.dense_w + dense[:, 0] * self.dense_cross[sparse[:, 4]]
        for f, w in enumerate(self.first):
            click += w[sparse[:, f]]
        for a, b in self.PAIRS:
            click += (self.latent[a][sparse[:, a]] * self.latent[b][sparse[:, b]]).sum(axis=1)
        conv = -2.0 + 0.5 * click - 0.4 * dense[:, 2]
        for f, w in enumerate(self.conv_first):
            conv += w[sparse[:, f]]
        conv += (self.latent[1][sparse[:, 1]] * self.latent[3][sparse[:, 3]]).sum(axis=1)
        return click, conv


def _zipf_ids(rng: np.random.Generator, card: int, n: int, exponent: float = 1.1) -> np.ndarray:
    """Ids 1..card with Zipf frequencies; which id is popular is a random permutation."""
    cdf = np.cumsum(np.arange(1, card + 1, dtype=np.float64) ** -exponent)
    rank = np.searchsorted(cdf, rng.uniform(0, cdf[-1], size=n))
    return rng.permutation(card)[np.minimum(rank, card - 1)] + 1


def _ctr_chunk(rng: np.random.Generator, model: _HiddenModel, cards: list[int], n: int) -> pa.Table:
    counts = rng.lognormal(mean=rng.uniform(0, 3, size=N_DENSE), sigma=1.2, size=(n, N_DENSE)).astype(np.int64)
    logged = np.log1p(counts)
    dense = ((logged - logged.mean(axis=0)) / (logged.std(axis=0) + 1e-6)).astype(np.float32)  # (n, 13)
    sparse = np.stack([_zipf_ids(rng, c, n) for c in cards], axis=1)  # (n, 26)
    click_logit, conv_logit = model.logits(dense, sparse)
    click = rng.uniform(size=n) < 1 / (1 + np.exp(-click_logit))
    conversion = rng.uniform(size=n) < 1 / (1 + np.exp(-conv_logit))
    columns = {name: dense[:, i] for i, name in enumerate(DENSE)}
    columns |= {name: sparse[:, i] for i, name in enumerate(SPARSE)}
    columns |= {"click": click.astype(np.int64), "conversion": conversion.astype(np.int64)}
    return pa.table(columns)


def write_ctr(out: Path, rows: int, seed: int) -> None:
    """``ctr_train.parquet`` (first 90%) and ``ctr_test.parquet`` (last 10%), written chunk by chunk."""
    rng = np.random.default_rng(seed)
    cards = cardinalities()
    model = _HiddenModel(rng, cards)
    n_test = rows // 10
    writers: dict[str, pq.ParquetWriter] = {}
    done = 0
    try:
        while done < rows:
            n = min(CHUNK, rows - done)
            chunk = _ctr_chunk(rng, model, cards, n)
            split_at = max(0, min(n, rows - n_test - done))  # rows of this chunk that are training rows
            for name, part in (("train", chunk.slice(0, split_at)), ("test", chunk.slice(split_at))):
                if part.num_rows:
                    if name not in writers:
                        writers[name] = pq.ParquetWriter(out / f"ctr_{name}.parquet", part.schema)
                    writers[name].write_table(part, row_group_size=CHUNK)
            done += n
    finally:
        for w in writers.values():
            w.close()
    meta = {"dense": DENSE, "sparse": {n: c + 1 for n, c in zip(SPARSE, cards)}, "labels": ["click", "conversion"]}
    (out / "ctr_meta.json").write_text(json.dumps(meta, indent=2))


def write_recall(out: Path, shapes: Shapes) -> None:
    config = SyntheticConfig(
        seed=shapes.seed,
        n_users=shapes.n_users,
        n_items=shapes.n_items,
        n_clusters=50,
        min_events=shapes.min_events,
        max_events=shapes.max_events,
        impressions_per_user=1,
        min_behaviors=0,  # only the interaction log is used: no browsing log
        max_behaviors=0,
    )
    log = generate(config)["interactions"]
    # contiguous ids from 1, sorted by user then time
    users = pc.unique(log["user_id"]).sort()
    items = pc.unique(log["item_id"]).sort()
    table = pa.table(
        {
            "user_id": pc.add(pc.index_in(log["user_id"], users), 1).cast(pa.int64()),
            "item_id": pc.add(pc.index_in(log["item_id"], items), 1).cast(pa.int64()),
            "ts": log["ts"],
        }
    ).sort_by([("user_id", "ascending"), ("ts", "ascending")])
    pq.write_table(table, out / "recall_interactions.parquet")
    meta = {"n_users": len(users), "n_items": len(items), "max_len": 50}
    (out / "recall_meta.json").write_text(json.dumps(meta, indent=2))


def ensure(root: Path, shapes: Shapes) -> Path:
    """The data directory for these shapes, generated on first use (a ``shapes.json`` stamp marks it complete)."""
    out = root / f"ctr{shapes.ctr_rows}_u{shapes.n_users}_i{shapes.n_items}_s{shapes.seed}"
    stamp = out / "shapes.json"
    if stamp.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_ctr(out, shapes.ctr_rows, shapes.seed)
    write_recall(out, shapes)
    stamp.write_text(json.dumps(asdict(shapes)))
    return out
