"""train_recall with TiCoSeRec's contrastive loss (``train_recall.augmentation``) on tiny data: the recall
tables carry the history's times, the loss is trained and reported, and it changes what is learned.

TiCoSeRec: Dang et al., "Uniform Sequence Better: Time Interval Aware Data Augmentation for Sequential
Recommendation", AAAI 2023.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.runner import run_stage
from rechub_core.data.augment import TiCoSeRec
from rechub_core.models.matching.comirec_sa import ComiRecSAConfig
from rechub_core.models.matching.sasrec import SASRecConfig
from rechub_core.training.objectives import Listwise, NextItem
from tests.conftest import fork_project, prepare_project, tiny_params_dict

AUGMENTATION = asdict(TiCoSeRec(weight=0.5, seed=3))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("recall_augmentation"), tiny_params_dict())


def _train(prepared: Path, root: Path, **train_recall) -> tuple[list, Path]:
    fork_project(prepared, root, tiny_params_dict(train_recall=train_recall))
    history = run_stage("train_recall", root=root)["history"]
    return history, root / "models" / "recall"


def _vectors(model: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(model / "user_embeddings.npy"), np.load(model / "item_embeddings.npy")


def test_recall_tables_carry_each_history_items_times(prepared):
    for name in ("recall_train", "recall_test"):
        table = pq.read_table(prepared / f"data/processed/{name}.parquet").to_pandas()
        assert (table["hist"].map(len) == table["hist_ts"].map(len)).all()
        assert all((np.diff(t) >= 0).all() and (len(t) == 0 or t[-1] <= ts) for t, ts in zip(table["hist_ts"], table["ts"]))
    # a user's test history is their last training items, with those items' times
    train = pq.read_table(prepared / "data/processed/recall_train.parquet").to_pandas()
    test = pq.read_table(prepared / "data/processed/recall_test.parquet").to_pandas()
    row = test.iloc[0]
    mine = train[train["user_id"] == row["user_id"]]
    assert list(row["hist_ts"]) == mine["ts"].tolist()[-len(row["hist_ts"]) :]


@pytest.mark.parametrize(
    "model,objective",
    [
        (None, None),  # params.yaml's two-tower model and objective (dssm, in_batch)
        (asdict(SASRecConfig(embed_dim=8, num_blocks=1)), asdict(NextItem())),
        (asdict(ComiRecSAConfig(embed_dim=8, num_interests=3)), asdict(Listwise())),  # interests averaged
    ],
    ids=["two_tower", "next_item", "multi_interest"],
)
def test_the_contrastive_loss_trains_and_changes_the_model(prepared, tmp_path, model, objective):
    chosen = {k: v for k, v in (("model", model), ("objective", objective)) if v is not None}
    off_history, off = _train(prepared, tmp_path / "off", **chosen)
    on_history, on = _train(prepared, tmp_path / "on", **chosen, augmentation=AUGMENTATION)
    assert "train_auxiliary_loss" not in off_history[0]
    assert np.isfinite(on_history[0]["train_auxiliary_loss"]) and on_history[0]["train_auxiliary_loss"] > 0
    (users_off, items_off), (users_on, items_on) = _vectors(off), _vectors(on)
    assert users_on.shape == users_off.shape and items_on.shape == items_off.shape
    assert np.isfinite(users_on).all() and np.isfinite(items_on).all()
    assert not np.allclose(users_on, users_off) and not np.allclose(items_on, items_off)


def test_augmented_training_is_reproducible(prepared, tmp_path):
    _, a = _train(prepared, tmp_path / "a", augmentation=AUGMENTATION)
    _, b = _train(prepared, tmp_path / "b", augmentation=AUGMENTATION)
    for x, y in zip(_vectors(a), _vectors(b)):
        np.testing.assert_array_equal(x, y)
