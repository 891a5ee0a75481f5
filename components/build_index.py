"""Build the ANN index over the recall model's item embeddings and measure it.

Builds the configured kind and an exact (Flat) index; records the approximate
index's recall@K against exact search, with the test users' embeddings as
queries. Writes ``index.faiss``, ``item_ids.npy`` (position → item id) and
``params.json`` into ``index_dir``, and ``metrics``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components import skip
from components.errors import DataError
from components.io import atomic_dir, write_json
from components.params import BuildIndexParams, section_dict
from rechub_core import index as ann


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(f"{path}: missing; run train_recall first")
    return np.load(path)


def run(params: BuildIndexParams, *, recall_model: Path, index_dir: Path, metrics: Path) -> dict[str, float]:
    if (why := skip.skipped(recall_model)) is not None:
        return skip.record("build_index", why, index_dir, metrics=(metrics,))
    items = _load(recall_model / "item_embeddings.npy")
    item_ids = _load(recall_model / "item_ids.npy")
    queries = _load(recall_model / "user_embeddings.npy")
    queries = queries.reshape(-1, queries.shape[-1])  # multi-interest users: one query per interest
    knobs = params.model_dump(exclude={"kind", "recall_k"})
    index = ann.build(items, params.kind, **knobs)
    exact = ann.build(items, "flat")
    figures = {f"ann_recall@{params.recall_k}_vs_exact": ann.recall_vs_exact(index, exact, queries, params.recall_k)}
    with atomic_dir(index_dir) as out:
        ann.save(index, out / "index.faiss")
        np.save(out / "item_ids.npy", item_ids)
        write_json(out / "params.json", section_dict(params))
    write_json(metrics, figures)
    return figures
