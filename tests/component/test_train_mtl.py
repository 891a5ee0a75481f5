"""train_mtl: any label columns as tasks, binary or regression, checked against the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from components.errors import DataError
from components.evaluate import evaluate_mtl
from components.io import read_json
from pipelines.runner import run_stage
from tests.conftest import fork_project, prepare_project, tiny_params_dict


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("mtl"), tiny_params_dict(), stages=("ingest", "validate"))


def _train(prepared: Path, root: Path, **train_mtl) -> Path:
    fork_project(prepared, root, tiny_params_dict(train_mtl=train_mtl))
    run_stage("train_mtl", root=root)
    return root / "models" / "mtl"


def test_a_regression_task_trains_with_squared_error_and_is_scored_by_rmse(prepared, tmp_path):
    model = _train(prepared, tmp_path, tasks=["click", "log_dwell", "conversion"],
                   balancing={"name": "uncertainty", "learning_rate": 0.01})
    meta = read_json(model / "model.json")
    assert meta["tasks"] == ["click", "log_dwell", "conversion"] and meta["regression"] == ["log_dwell"]
    figures = evaluate_mtl(tmp_path / "data/processed", model)
    assert set(figures) == {"click_auc", "conversion_auc", "log_dwell_rmse", "log_dwell_mae"}
    assert np.isfinite(list(figures.values())).all()
    history = read_json(tmp_path / "plots/train_mtl.json")
    assert {"weight_click", "weight_log_dwell", "weight_conversion", "valid_log_dwell_rmse"} <= set(history[0])
    assert np.isfinite([h["train_loss"] for h in history]).all()


def test_an_unknown_task_names_the_labels_there_are(prepared, tmp_path):
    with pytest.raises(DataError, match=r"train_mtl.tasks: \['clicks'\] not among .*'click', 'conversion'.*'log_dwell'"):
        _train(prepared, tmp_path, tasks=["clicks", "conversion"])


def test_a_funnel_model_refuses_tasks_out_of_funnel_order(prepared, tmp_path):
    esmm = {"name": "esmm", "embed_dim": 8, "tower_dims": [16], "dropout": 0.0, "groups": ["user", "item"]}
    with pytest.raises(DataError, match="funnel order"):
        _train(prepared, tmp_path, model=esmm, tasks=["conversion", "click"])
    with pytest.raises(DataError, match="funnel order"):
        _train(prepared, tmp_path / "b", model=esmm, tasks=["click", "log_dwell"])


def test_esmm_reports_its_conversion_tower_on_clicked_rows(prepared, tmp_path):
    esmm = {"name": "esmm", "embed_dim": 8, "tower_dims": [16], "dropout": 0.0, "groups": ["user", "item"]}
    model = _train(prepared, tmp_path, model=esmm, tasks=["click", "conversion"])
    figures = evaluate_mtl(tmp_path / "data/processed", model)
    assert 0 < figures["conversion_given_click_auc"] < 1


def _rescale(root: Path, column: str, shift: float, factor: float) -> None:
    """Rewrite a real-valued label of every ranking split as ``shift + factor * value``."""
    for split in ("train", "valid", "test"):
        path = root / "data/processed" / f"ranking_{split}.parquet"
        table = pq.read_table(path)
        scaled = pc.add(pc.multiply(table[column], factor), shift).cast(table.schema.field(column).type)
        pq.write_table(table.set_column(table.schema.get_field_index(column), column, scaled), path)


def test_a_regression_target_far_from_zero_is_learnt_on_its_own_scale(prepared, tmp_path):
    """A target of mean ~1000 and spread ~50 (the built-in log_dwell, rescaled): the model starts at the
    training mean and predicts in the target's units, saved, reloaded and scored that way."""
    fork_project(prepared, tmp_path, tiny_params_dict(train_mtl={
        "tasks": ["click", "log_dwell"], "train": {"epochs": 4, "learning_rate": 0.01}, "early_stopping": {"monitor": "loss"}}))
    _rescale(tmp_path, "log_dwell", 1000.0, 50.0)
    run_stage("train_mtl", root=tmp_path)
    model_dir = tmp_path / "models" / "mtl"
    meta = read_json(model_dir / "model.json")
    train = pq.read_table(tmp_path / "data/processed/ranking_train.parquet")["log_dwell"].to_numpy()
    assert meta["task_scale"]["shift"] == [0.0, pytest.approx(train.mean(), rel=1e-5)]
    assert meta["task_scale"]["scale"] == [1.0, pytest.approx(train.std(), rel=1e-4)]
    figures = evaluate_mtl(tmp_path / "data/processed", model_dir)
    test = pq.read_table(tmp_path / "data/processed/ranking_test.parquet")["log_dwell"].to_numpy()
    constant = float(np.sqrt(np.mean((test - train.mean()) ** 2)))  # predicting the training mean
    assert figures["log_dwell_rmse"] < constant, (figures, constant)  # (an output starting at 0: about 1000)
    history = read_json(tmp_path / "plots/train_mtl.json")
    assert history[0]["train_loss"] < 5  # errors counted in standard deviations, not in the target's units


def test_binary_tasks_alone_are_not_wrapped(prepared, tmp_path):
    meta = read_json(_train(prepared, tmp_path, tasks=["click", "conversion"]) / "model.json")
    assert meta["task_scale"] is None
