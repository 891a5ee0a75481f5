"""train_recall with every objective writes finite embeddings of the promised shapes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.runner import run_stage
from rechub_core.models.registry import REGISTRY
from rechub_core.training.objectives import TWO_TOWER, InBatch, Listwise, Mixed
from tests.conftest import fork_project, prepare_project, tiny_params_dict


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("recall"), tiny_params_dict())


def _train(prepared: Path, root: Path, **train_recall) -> tuple[dict, Path]:
    fork_project(prepared, root, tiny_params_dict(train_recall=train_recall))
    result = run_stage("train_recall", root=root)
    assert np.isfinite(result["history"][0]["train_loss"])
    return result, root / "models" / "recall"


OBJECTIVES = [asdict(cls()) for cls in TWO_TOWER] + [
    asdict(InBatch(logq_correction="none")),
    asdict(InBatch(logq_correction="streaming")),
    asdict(Mixed(logq_correction=False)),
    asdict(Listwise(logq_correction=False)),
]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_two_tower_objective_trains(prepared, tmp_path, objective):
    _, model = _train(prepared, tmp_path, objective=objective)
    items, ids = np.load(model / "item_embeddings.npy"), np.load(model / "item_ids.npy")
    users = np.load(model / "user_embeddings.npy")
    n_test = pq.read_metadata(tmp_path / "data/processed/recall_test.parquet").num_rows
    assert items.shape == (len(ids), 8) and users.shape == (n_test, 8)
    assert ids.min() == 1 and np.all(np.diff(ids) == 1)  # every real item, id order
    assert np.isfinite(items).all() and np.isfinite(users).all()
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)  # cosine: unit vectors


def test_the_objective_changes_what_is_learned(prepared, tmp_path):
    """Temperature is applied: the same model and seed with another temperature learns other vectors."""
    _, a = _train(prepared, tmp_path / "a", objective=asdict(InBatch(temperature=0.05)))
    _, b = _train(prepared, tmp_path / "b", objective=asdict(InBatch(temperature=0.5)))
    assert not np.allclose(np.load(a / "item_embeddings.npy"), np.load(b / "item_embeddings.npy"))


def test_multi_interest_model_writes_one_vector_per_interest(prepared, tmp_path):
    from rechub_core.models.matching.comirec_sa import ComiRecSAConfig

    model = asdict(ComiRecSAConfig(embed_dim=8, num_interests=3))
    _train(prepared, tmp_path, model=model, objective=asdict(Listwise()))
    users = np.load(tmp_path / "models/recall/user_embeddings.npy")
    assert users.ndim == 3 and users.shape[1:] == (3, 8)


@pytest.mark.parametrize("name", sorted(REGISTRY["matching"]))
def test_every_model_trains_with_a_shared_objective(prepared, tmp_path, name):
    """Mixed negatives (in-batch plus sampled) through every model, multi-interest and per-cluster ones included."""
    model = asdict(REGISTRY["matching"][name].config())
    _, out = _train(prepared, tmp_path, model=model, objective=asdict(Mixed()))
    users, items = np.load(out / "user_embeddings.npy"), np.load(out / "item_embeddings.npy")
    assert np.isfinite(users).all() and np.isfinite(items).all()
    assert users.shape[-1] == items.shape[-1] and users.ndim in (2, 3)
