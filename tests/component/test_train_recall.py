"""train_recall in every loss mode writes finite embeddings of the promised shapes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.runner import run_stage
from tests.conftest import tiny_params_dict


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recall")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict()))
    for stage in ("ingest", "validate", "negative_sample"):
        run_stage(stage, root=root)
    return root


@pytest.mark.parametrize("loss", ["in_batch", "mixed"])
@pytest.mark.parametrize("logq_correction", [True, False])
def test_every_loss_mode_trains(prepared, tmp_path, loss, logq_correction):
    for sub in ("data", "reports"):
        shutil.copytree(prepared / sub, tmp_path / sub)
    params = tiny_params_dict(train_recall={"loss": loss, "logq_correction": logq_correction})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
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
