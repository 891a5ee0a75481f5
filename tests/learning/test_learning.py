"""Every registered model learns the planted structure of the built-in data.

A model that cannot learn fails here: on a mid-sized generated data set,
each matching model (trained with its paper's objective) must beat the
popularity baseline's recall@50 and each order-aware one the bag-of-items
DSSM on the order-driven test rows, each
ranking model the logistic regression's test AUC (and each behaviour-sequence
one the DIN base model where the target's category is in the history), each multi-task model
a per-task logistic regression's AUC (by 0.01), ESMM's conversion tower (scored over every impression) the
same tower trained on clicked rows only, and a regression task (``log_dwell``) the training mean's RMSE.
Parametrised over the registry.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from pipelines.runner import run_stage
from rechub_core.models.registry import REGISTRY
from rechub_core.training.objectives import NextItem, SessionParallel
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
        "min_behaviors": 100,
        "max_behaviors": 400,
    },
    "history_len": 20,
    "long_history_len": 200,
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


def recall_train(objective) -> dict:
    """Per-user sequence objectives see one example per user an epoch; the others every training event."""
    if isinstance(objective, NextItem):
        return dict(TRAIN, epochs=40, batch_size=128, learning_rate=0.002)
    if isinstance(objective, SessionParallel):
        return dict(TRAIN, epochs=10, batch_size=128, learning_rate=0.002)
    return TRAIN


# order-aware models: they must also beat the bag-of-items DSSM where the next item follows the last one
SEQUENTIAL = {"gru4rec", "narm", "stamp", "sasrec"}


def train_matching(name: str, data: Path, root: Path) -> dict[str, float]:
    """Train ``name`` with its paper's objective and negatives; full-ranking figures on all and on order-driven test rows."""
    from components.evaluate import RecallData, full_ranking_figures, sequence_driven

    entry = REGISTRY["matching"][name]
    params = params_for(train_recall={"model": model_params(entry), "objective": asdict(entry.paper),
                                      "train": recall_train(entry.paper)}, negative_sample=entry.negatives)
    fork_project(data, root, params)
    if entry.negatives:
        run_stage("negative_sample", root=root)
    run_stage("train_recall", root=root)
    processed = root / "data/processed"
    recall = RecallData(processed, root / "models/recall")
    figures = full_ranking_figures(recall, 50)
    ordered = full_ranking_figures(recall, 50, sequence_driven(processed))
    return {**figures, "ordered_recall@50": ordered["recall@50"]}


@pytest.fixture(scope="module")
def dssm_figures(data, tmp_path_factory) -> dict[str, float]:
    return train_matching("dssm", data, tmp_path_factory.mktemp("dssm"))


@pytest.mark.parametrize("name", sorted(REGISTRY["matching"]))
def test_matching_model_beats_popularity(name, data, dssm_figures, tmp_path):
    figures = dssm_figures if name == "dssm" else train_matching(name, data, tmp_path)
    print(name, figures)
    assert figures["recall@50"] > figures["popularity_recall@50"] + 0.02, figures
    if name in SEQUENTIAL:
        assert figures["ordered_recall@50"] > dssm_figures["ordered_recall@50"] + 0.02, (figures, dssm_figures)


# behaviour-sequence rankers: they must also beat the DIN base model (a sum-pooled history) where the
# target's category is in the history, since the clicks there depend on which behaviour relates to the target
BEHAVIOR_MODELS = {"din", "dien", "bst", "sim", "eta", "mimn"}


# MIMN steps through its memory one behaviour at a time (about 8 ms a step for a batch of 512 here):
# a shorter memory than its default 50 keeps this test's time near the others'
SHORTER = {"mimn": {"memory_len": 20}}


def train_ranking(name: str, data: Path, root: Path) -> dict[str, float]:
    """Train ``name`` with its default config; test AUC, logloss, GAUC, LR's AUC and the behaviour-driven AUC."""
    from components.evaluate import evaluate_ranking

    model = model_params(REGISTRY["ranking"][name]) | SHORTER.get(name, {})
    params = params_for(train_ranker={"model": model, "train": TRAIN, "early_stopping": STOPPING})
    fork_project(data, root, params)
    run_stage("train_ranker", root=root)
    return evaluate_ranking(root / "data/processed", root / "models/ranker")


@pytest.fixture(scope="module")
def din_base_figures(data, tmp_path_factory) -> dict[str, float]:
    return train_ranking("din_base", data, tmp_path_factory.mktemp("din_base"))


@pytest.mark.parametrize("name", sorted(REGISTRY["ranking"]))
def test_ranking_model_beats_logistic_regression(name, data, din_base_figures, tmp_path):
    figures = din_base_figures if name == "din_base" else train_ranking(name, data, tmp_path)
    print(name, figures)
    assert figures["auc"] > figures["lr_auc"] + 0.01, figures
    if name in BEHAVIOR_MODELS:
        assert figures["behavior_auc"] > din_base_figures["behavior_auc"] + 0.005, (figures, din_base_figures)


@pytest.fixture(scope="module")
def single_task_lr_aucs(data) -> dict[str, float]:
    from benchmarks.multi_task_models import single_task_lr

    return {task: single_task_lr(data, task) for task in ("click", "conversion")}


@pytest.mark.parametrize("name", sorted(REGISTRY["multi_task"]))
def test_multi_task_model_beats_single_task_logistic_regression(name, data, single_task_lr_aucs, tmp_path):
    params = params_for(
        train_mtl={"model": model_params(REGISTRY["multi_task"][name]), "train": TRAIN, "early_stopping": STOPPING}
    )
    root = fork_project(data, tmp_path, params)
    run_stage("train_mtl", root=root)
    from components.evaluate import evaluate_mtl

    figures = evaluate_mtl(root / "data/processed", root / "models/mtl")
    print(name, figures, single_task_lr_aucs)
    for task, lr_auc in single_task_lr_aucs.items():
        assert figures[f"{task}_auc"] > lr_auc + 0.01, (task, figures, lr_auc)


def test_esmm_conversion_beats_a_clicked_only_model_on_the_entire_space(data, tmp_path):
    """ESMM's pCVR against its conversion tower trained on clicked impressions only (the paper's BASE), both
    scored over every test impression against the generator's would-convert-if-clicked label."""
    from benchmarks.multi_task_models import entire_space_conversion

    params = params_for(train_mtl={"model": model_params(REGISTRY["multi_task"]["esmm"]), "train": TRAIN,
                                   "early_stopping": STOPPING})
    root = fork_project(data, tmp_path, params)
    run_stage("train_mtl", root=root)
    figures = entire_space_conversion(root, root / "models/mtl")
    print(figures)
    assert figures["esmm_conversion_if_clicked_auc"] > figures["clicked_only_conversion_if_clicked_auc"] + 0.01, figures


def test_a_regression_task_beats_the_training_mean(data, tmp_path):
    """MMoE on click and ``log_dwell`` (squared error): the dwell RMSE beats predicting the training mean."""
    from components.evaluate import evaluate_mtl
    from components.io import read_parquet

    params = params_for(train_mtl={"tasks": ["click", "log_dwell"], "train": TRAIN, "early_stopping": STOPPING})
    root = fork_project(data, tmp_path, params)
    run_stage("train_mtl", root=root)
    figures = evaluate_mtl(root / "data/processed", root / "models/mtl")
    dwell = {s: read_parquet(root / f"data/processed/ranking_{s}.parquet").column("log_dwell").to_numpy()
             for s in ("train", "test")}
    constant = float(((dwell["test"] - dwell["train"].mean()) ** 2).mean() ** 0.5)
    print(figures, constant)
    assert figures["log_dwell_rmse"] < constant - 0.02, (figures, constant)

