"""Shared fixtures: tiny params derived from the real params.yaml."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: each computes on one thread (subprocesses too),
    # so the workers do not oversubscribe the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

TINY = {
    "ingest": {
        "synthetic": {
            "n_users": 300,
            "n_items": 200,
            "n_clusters": 6,
            "min_events": 6,
            "max_events": 30,
            "impressions_per_user": 20,
            "min_behaviors": 20,
            "max_behaviors": 80,
        },
        "history_len": 10,
        "long_history_len": 32,
    },
    "negative_sample": {"num_negatives": 4},
    "train_recall": {
        "model": {"embed_dim": 8, "tower_dims": [16, 8]},
        "train": {"epochs": 1, "batch_size": 256},
    },
    "build_index": {"hnsw_m": 8, "ef_construction": 32, "ef_search": 32, "ivf_nlist": 8, "ivf_nprobe": 4},
    "train_ranker": {"model": {"embed_dim": 4, "mlp_dims": [16]}, "train": {"epochs": 1, "batch_size": 512}},
    "train_mtl": {
        "model": {"embed_dim": 4, "expert_dims": [16], "tower_dims": [8], "num_experts": 2},
        "train": {"epochs": 1, "batch_size": 512},
    },
    "export": {"parity_rows": 64},
}


def merge(base: dict, override: dict) -> dict:
    """``override`` merged into ``base`` key by key; a section naming another model replaces the old one."""
    out = dict(base)
    for key, value in override.items():
        same_model = isinstance(base.get(key), dict) and base[key].get("name") == value.get("name", base[key].get("name"))
        out[key] = merge(base[key], value) if isinstance(value, dict) and same_model else value
    return out


def tiny_params_dict(**overrides) -> dict:
    """The repository's params.yaml with tiny sizes (and ``overrides``) merged in."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    return merge(merge(base, TINY), overrides)


@pytest.fixture
def tiny_params_file(tmp_path: Path) -> Path:
    """A tiny params.yaml in ``tmp_path`` (the project root of a test run)."""
    path = tmp_path / "params.yaml"
    params = tiny_params_dict()
    params["ingest"]["raw_dir"] = "data/raw"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


PREPARED = ("ingest", "validate", "negative_sample")  # the stages every training stage builds on


def prepare_project(root: Path, params: dict, stages: tuple[str, ...] = PREPARED) -> Path:
    """Write ``params`` into ``root`` and run ``stages`` there."""
    from pipelines.runner import run_stage

    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in stages:
        run_stage(stage, root=root)
    return root


def fork_project(source: Path, root: Path, params: dict) -> Path:
    """A new project at ``root`` with ``source``'s prepared data and report, and its own ``params``."""
    for sub in ("data", "reports"):
        shutil.copytree(source / sub, root / sub)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root
