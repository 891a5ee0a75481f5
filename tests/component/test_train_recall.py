"""train_recall in every loss mode writes finite embeddings of the promised shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.runner import run_stage
from tests.conftest import fork_project, prepare_project, tiny_params_dict


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("recall"), tiny_params_dict())


@pytest.mark.parametrize("loss", ["in_batch", "mixed"])
@pytest.mark.parametrize("logq_correction", [True, False])
def test_every_loss_mode_trains(prepared, tmp_path, loss, logq_correction):
    fork_project(prepared, tmp_path, tiny_params_dict(train_recall={"loss": loss, "logq_correction": logq_correction}))
    result = run_stage("train_recall", root=tmp_path)
    assert np.isfinite(result["history"][0]["train_loss"])
    model = tmp_path / "models" / "recall"
    items, ids = np.load(model / "item_embeddings.npy"), np.load(model / "item_ids.npy")
    users = np.load(model / "user_embeddings.npy")
    n_test = pq.read_metadata(tmp_path / "data/processed/recall_test.parquet").num_rows
    assert items.shape == (len(ids), 8) and users.shape == (n_test, 8)
    assert ids.min() == 1 and np.all(np.diff(ids) == 1)  # every real item, id order
    assert np.isfinite(items).all() and np.isfinite(users).all()
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)  # cosine: unit vectors
