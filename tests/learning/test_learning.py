"""Every registered model learns the planted structure of the built-in data.

A model that cannot learn fails here: on a mid-sized generated data set,
each matching model must beat the popularity baseline's recall@50, each
ranking model the logistic regression's test AUC, and each multi-task model
a per-task logistic regression's AUC. Parametrised over the registry.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from pipelines.runner import run_stage
from rechub_core.models.registry import REGISTRY
from tests.conftest import fork_project, prepare_project, tiny_params_dict

pytestmark = pytest.mark.slow

DATA = {
    "synthetic": {
        "n_users": 1500,
        "n_items": 600,
        "n_clusters": 10,
        "min_events": 10,
        "max_events": 60,
        "impressions_per_user": 40,
    },
    "history_len": 20,
}
TRAIN = {"epochs": 8, "batch_size": 512, "learning_rate": 0.005, "weight_decay": 0.0}
STOPPING = {"patience": 2, "monitor": "auc"}


def params_for(**sections) -> dict:
    return tiny_params_dict(ingest=DATA, build_index={"kind": "flat"}, **sections)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("learning"), params_for())


def model_params(entry) -> dict:
    return asdict(entry.config())


# two-tower models see every training event per epoch; next-item models one sequence per user
RECALL_TRAIN = {
    "two_tower": dict(TRAIN, epochs=4, learning_rate=0.002),
    "next_item": dict(TRAIN, epochs=40, batch_size=128, learning_rate=0.002),
}


@pytest.mark.parametrize("name", sorted(REGISTRY["matching"]))
def test_matching_model_beats_popularity(name, data, tmp_path):
    entry = REGISTRY["matching"][name]
    params = params_for(train_recall={"model": model_params(entry), "train": RECALL_TRAIN[entry.objective]})
    root = fork_project(data, tmp_path, params)
    for stage in ("train_recall", "build_index"):
        run_stage(stage, root=root)
    from components.evaluate import evaluate_recall
    from components.params import load

    figures = evaluate_recall(load(root / "params.yaml").evaluate, root / "data/processed", root / "models/recall",
                              root / "models/index")
    print(name, figures)
    assert figures["recall@50"] > figures["popularity_recall@50"] + 0.02, figures


@pytest.mark.parametrize("name", sorted(REGISTRY["ranking"]))
def test_ranking_model_beats_logistic_regression(name, data, tmp_path):
    params = params_for(
        train_ranker={"model": model_params(REGISTRY["ranking"][name]), "train": TRAIN, "early_stopping": STOPPING}
    )
    root = fork_project(data, tmp_path, params)
    run_stage("train_ranker", root=root)
    from components.evaluate import evaluate_ranking

    figures = evaluate_ranking(root / "data/processed", root / "models/ranker")
    print(name, figures)
    assert figures["auc"] > figures["lr_auc"] + 0.01, figures


@pytest.mark.parametrize("name", sorted(REGISTRY["multi_task"]))
def test_multi_task_model_beats_single_task_logistic_regression(name, data, tmp_path):
    params = params_for(
        train_mtl={"model": model_params(REGISTRY["multi_task"][name]), "train": TRAIN, "early_stopping": STOPPING}
    )
    root = fork_project(data, tmp_path, params)
    run_stage("train_mtl", root=root)
    from components.artifacts import load_table
    from components.evaluate import evaluate_mtl
    from components.fit import fit_registered, ranking_tables
    from components.params import load
    from rechub_core.metrics import auc
    from rechub_core.models.ranking.linear import LogisticRegressionConfig
    from rechub_core.training.trainer import predict

    figures = evaluate_mtl(root / "data/processed", root / "models/mtl")
    schema, train, valid = ranking_tables(root / "data/processed")
    test = load_table(root / "data/processed", "ranking_test", schema)
    ranker = load(root / "params.yaml").train_ranker
    for task in ("click", "conversion"):
        lr, _ = fit_registered("ranking", LogisticRegressionConfig(), schema, train, valid, [task],
                               ranker.baseline_train, ranker.early_stopping, seed=0, desc=f"lr {task}")
        lr_auc = auc(test[task].numpy(), predict(lr, test))
        print(name, task, figures, lr_auc)
        assert figures[f"{task}_auc"] > lr_auc, (task, figures, lr_auc)
