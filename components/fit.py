"""Shared by train_ranker and train_mtl: build a registered model and fit it point-wise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.artifacts import load_behavior_log, load_ranking, load_schema, reproducible
from rechub_core.data.tables import TensorTable
from rechub_core.features import Schema
from rechub_core.layers.task_scale import TaskScale
from rechub_core.models.registry import Family, build
from rechub_core.training.balancing import Balancing
from rechub_core.training.trainer import EarlyStopping, TrainConfig, fit_pointwise


def ranking_tables(processed: Path, groups: list[str]) -> tuple[Schema, TensorTable, TensorTable]:
    """The schema and the train and valid ranking splits, with the behaviour columns a model of ``groups`` reads."""
    schema = load_schema(processed)
    log = load_behavior_log(processed) if "long" in groups else None
    train = load_ranking(processed, "ranking_train", schema, groups, log)
    return schema, train, load_ranking(processed, "ranking_valid", schema, groups, log)


def fit_registered(
    family: Family,
    config: Any,
    schema: Schema,
    train: TensorTable,
    valid: TensorTable,
    labels: list[str],
    train_config: TrainConfig,
    early_stopping: EarlyStopping,
    *,
    seed: int,
    desc: str,
    regression: tuple[str, ...] = (),
    balancing: Balancing | None = None,
    task_scale: dict[str, list[float]] | None = None,
    **build_kwargs: Any,
) -> tuple[nn.Module, list[dict]]:
    """Build the model a config names and train it, early-stopping on ``valid``; reproducible end to end.

    ``regression`` names the labels trained with squared error; ``balancing`` combines several tasks' losses;
    ``task_scale`` (``{"shift": [...], "scale": [...]}``, one per label) wraps the model in ``TaskScale``.
    """
    generator = torch.Generator().manual_seed(seed)
    with reproducible(seed):
        model = build(family, config, schema, **build_kwargs)
        if task_scale is not None:
            model = TaskScale(model, task_scale["shift"], task_scale["scale"])
        history = fit_pointwise(
            model, train, labels, train_config, generator=generator, valid=valid, early_stopping=early_stopping,
            regression=regression, balancing=balancing, desc=desc,
        )
    return model, history
