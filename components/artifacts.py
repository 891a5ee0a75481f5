"""Loading processed tables as tensors, and saving / loading trained models."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from components.errors import DataError
from components.io import read_json, read_parquet
from rechub_core.data.behaviors import HIST, HIST_TS, LONG_ITEM, BehaviorLog, WithBehaviors, with_history_columns
from rechub_core.data.tables import TensorTable, arrow_to_tensors
from rechub_core.features import Schema
from rechub_core.layers.task_scale import TaskScale
from rechub_core.models.registry import Family, build, entry


def load_schema(directory: Path) -> Schema:
    path = Path(directory) / "schema.json"
    if not path.exists():
        raise DataError(f"{path}: missing; run ingest first")
    return Schema.from_json(path.read_text())


def load_table(processed: Path, name: str, schema: Schema, columns: list[str] | None = None) -> TensorTable:
    """``processed/<name>.parquet`` as tensors; list columns padded to the schema's lengths, and a history's
    times ``hist_ts`` (not a model feature, so not in the schema) to the history's."""
    table = read_parquet(Path(processed) / f"{name}.parquet", columns)
    lengths = schema.sequence_lengths()
    if HIST in lengths:
        lengths.setdefault(HIST_TS, lengths[HIST])
    return arrow_to_tensors(table, lengths)


# each split draws its DIEN negatives from its own fixed seed: the same rows get the same negatives every run
_NEGATIVE_SEEDS = {"ranking_train": 101, "ranking_valid": 102, "ranking_test": 103}


def load_behavior_log(processed: Path) -> BehaviorLog:
    """``processed/behaviors.parquet`` (sorted by user, then time) as a ``BehaviorLog``."""
    t = load_table(processed, "behaviors", Schema(), ["user_id", "item_id", "category", "ts"])
    return BehaviorLog(t["user_id"], t["item_id"], t["category"], t["ts"])


def load_ranking(
    processed: Path, name: str, schema: Schema, groups: list[str] | tuple[str, ...], log: BehaviorLog | None = None
) -> TensorTable:
    """A ranking split with its behaviour columns (``rechub_core.data.behaviors``): ``hist_category``,
    ``hist_dt`` and ``hist_neg`` when the schema has them, and, when ``groups`` (a model's feature
    groups) reads the ``long`` group, each batch's window of the behaviour log (``log``, read from
    ``processed`` unless given). Models that do not read it pay nothing for it."""
    table = load_table(processed, name, schema)  # rows without users (Criteo, census) have no history
    if "behavior" in schema.groups:
        items = id_indexed(load_table(processed, "items", schema, ["item_id", "category"]), "item_id")
        vocab = schema.feature("item_id").vocab_size
        table = with_history_columns(table, items["category"], vocab, _NEGATIVE_SEEDS.get(name, 100))
    if "long" in groups:
        table = WithBehaviors(table, log or load_behavior_log(processed), schema.feature(LONG_ITEM).max_len)
    return table


def id_indexed(table: TensorTable, id_column: str) -> TensorTable:
    """Rows placed at their id (row 0 = the all-zero padding row), so ``take(ids)`` looks features up."""
    ids = table[id_column]
    n = int(ids.max()) + 1
    columns = {}
    for name, col in table.columns.items():
        out = torch.zeros((n, *col.shape[1:]), dtype=col.dtype)
        out[ids] = col
        columns[name] = out
    return TensorTable(columns)


@contextmanager
def reproducible(seed: int):
    """Seed torch's global RNG (weight init, dropout) inside a fork, with deterministic kernels.

    Multi-threaded CPU backward passes (embedding gradients) otherwise sum in
    a varying order, so two runs with the same seed drift apart by ~1e-7 per
    step. Both the RNG and the determinism flag are restored on exit.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)


def save_model(directory: Path, family: Family, model: nn.Module, config: Any, schema: Schema, **extra: Any) -> None:
    """``model.pt`` (weights), ``model.json`` (family, config, extras) and ``schema.json`` into ``directory``."""
    directory = Path(directory)
    torch.save(model.state_dict(), directory / "model.pt")
    (directory / "model.json").write_text(json.dumps({"family": family, "config": asdict(config), **extra}, indent=2))
    (directory / "schema.json").write_text(schema.to_json())


def load_model(directory: Path, **kwargs: Any) -> tuple[nn.Module, dict]:
    """Rebuild a saved model from its registry entry and weights; returns (model in eval mode, model.json)."""
    directory = Path(directory)
    meta = read_json(directory / "model.json")
    schema = load_schema(directory)
    config = entry(meta["family"], meta["config"]["name"]).config(**meta["config"])
    if meta["family"] == "multi_task":
        kwargs.setdefault("num_tasks", len(meta["tasks"]))
    model = build(meta["family"], config, schema, **kwargs)
    if meta.get("task_scale") is not None:  # regression outputs on their targets' scale (train_mtl)
        model = TaskScale(model, meta["task_scale"]["shift"], meta["task_scale"]["scale"])
    model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
    model.eval()
    return model, meta


def save_array(path: Path, array: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(array))
