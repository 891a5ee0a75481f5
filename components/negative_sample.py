"""Negative sampling for recall training: ``num_negatives`` ids per training row.

Writes into ``samples``: ``negatives.parquet`` (``neg_items`` list column,
row-aligned with ``recall_train.parquet``), ``logq.parquet`` (per item: log of
its training frequency, the in-batch sampling probability, and log of its
probability under this sampler, for log-Q correction), and ``params.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components import skip
from components.artifacts import load_schema
from components.io import atomic_dir, read_parquet, require_validated, write_json
from components.params import NegativeSampleParams, section_dict
from rechub_core.data.sampling import item_distribution, sample_negatives


def item_counts(positives: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(positives, minlength=n_items).astype(np.float64)


def run(params: NegativeSampleParams, *, processed: Path, report: Path, samples: Path) -> dict[str, float]:
    require_validated(report)
    if (why := skip.reason(processed, "recall")) is not None:
        return skip.record("negative_sample", why, samples)
    schema = load_schema(processed)
    n_items = schema.feature("item_id").vocab_size
    positives = read_parquet(processed / "recall_train.parquet", ["item_id"]).column("item_id").to_numpy()
    counts = item_counts(positives, n_items)
    probs = item_distribution(counts, params.distribution, params.popularity_power)
    rng = np.random.default_rng(params.seed)
    negatives = sample_negatives(probs, positives, params.num_negatives, rng)
    freq = counts / counts.sum()
    with np.errstate(divide="ignore"):
        logq = pa.table(
            {
                "item_id": np.arange(n_items),
                "train_logq": np.log(freq).astype(np.float32),
                "sampler_logq": np.log(probs).astype(np.float32),
            }
        )
    flat = pa.array(negatives.reshape(-1))
    offsets = pa.array(np.arange(0, negatives.size + 1, params.num_negatives, dtype=np.int32))
    with atomic_dir(samples) as out:
        pq.write_table(pa.table({"neg_items": pa.ListArray.from_arrays(offsets, flat)}), out / "negatives.parquet")
        pq.write_table(logq, out / "logq.parquet")
        write_json(out / "params.json", section_dict(params))
    return {"rows": float(len(positives)), "accidental_hits": float((negatives == positives[:, None]).mean())}
