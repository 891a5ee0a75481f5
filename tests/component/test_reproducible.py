"""Re-running a stage with the same inputs and params gives the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipelines.runner import run_stage
from tests.conftest import fork_project, prepare_project, tiny_params_dict


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repro")
    # large enough batches for torch's multi-threaded embedding backward, whose order otherwise varies
    params = tiny_params_dict(
        ingest={"synthetic": {"n_users": 1000, "n_items": 400, "max_events": 40}},
        train_recall={"train": {"batch_size": 1024}},
        train_ranker={"train": {"batch_size": 1024}},
    )
    return prepare_project(root, params)


def twice(prepared: Path, tmp_path: Path, stage: str) -> tuple[Path, Path]:
    roots = []
    for i in range(2):
        root = fork_project(prepared, tmp_path / str(i), yaml.safe_load((prepared / "params.yaml").read_text()))
        run_stage(stage, root=root)
        roots.append(root)
    return roots[0], roots[1]


def test_train_recall_embeddings_are_identical(prepared, tmp_path):
    a, b = twice(prepared, tmp_path, "train_recall")
    for name in ("item_embeddings.npy", "user_embeddings.npy"):
        np.testing.assert_array_equal(np.load(a / "models/recall" / name), np.load(b / "models/recall" / name))


def test_train_ranker_weights_are_identical(prepared, tmp_path):
    a, b = twice(prepared, tmp_path, "train_ranker")
    wa = torch.load(a / "models/ranker/model.pt", weights_only=True)
    wb = torch.load(b / "models/ranker/model.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_determinism_flag_is_restored_after_training(prepared, tmp_path):
    assert not torch.are_deterministic_algorithms_enabled()
    twice(prepared, tmp_path, "train_mtl")
    assert not torch.are_deterministic_algorithms_enabled()
