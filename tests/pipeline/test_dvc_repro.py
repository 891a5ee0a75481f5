"""The whole ``dvc repro`` on tiny data: outputs, metrics keys, no-op rerun, key-level params."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, tiny_params_dict

pytestmark = pytest.mark.slow

METRIC_KEYS = {
    "recall.json": {"recall@50", "ndcg@50", "hit@50", "precision@50", "mrr@50", "popularity_recall@50", "index_recall@50"},
    "index.json": {"ann_recall@50_vs_exact"},
    "ranking.json": {"auc", "logloss", "gauc", "lr_auc", "behavior_auc"},
    "mtl.json": {"click_auc", "conversion_auc"},
    "export.json": {"max_abs_diff"},
}


def dvc(project: Path, *args: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([a-z_]+)'", output)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project's pipeline definition and code with tiny params, reproduced once."""
    root = tmp_path_factory.mktemp("project")
    for name in ("components", "rechub_core", "pipelines"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    dvc(root, "init", "--no-scm", "-q")
    first = dvc(root, "repro")
    (root / "first_repro.log").write_text(first)
    return root


def test_dvc_yaml_is_rendered_from_the_pipeline_definition():
    from pipelines.render import render

    assert (ROOT / "dvc.yaml").read_text() == render()


def test_first_repro_runs_every_stage_in_order(project):
    order = ran((project / "first_repro.log").read_text())
    from pipelines.stages import STAGES, upstream

    assert sorted(order) == sorted(s.name for s in STAGES)
    for s in STAGES:
        assert all(order.index(u) < order.index(s.name) for u in upstream(s))


def test_metrics_files_have_exactly_the_promised_keys(project):
    for name, keys in METRIC_KEYS.items():
        figures = json.loads((project / "metrics" / name).read_text())
        assert set(figures) == keys, name
        assert all(isinstance(v, float) for v in figures.values())
    assert json.loads((project / "metrics" / "export.json").read_text())["max_abs_diff"] < 1e-4


def test_bundle_holds_models_index_vocab_and_manifest(project):
    bundle = project / "bundle"
    for name in ["user_tower.onnx", "item_tower.onnx", "ranker.onnx", "mtl.onnx", "index.faiss", "item_ids.npy",
                 "schema.json", "vocab/item_id.parquet", "manifest.json"]:
        assert (bundle / name).exists(), name
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {"versions", "models", "metrics", "params_hash", "params"} <= set(manifest)
    assert manifest["versions"]["torch"].startswith("2.")
    assert manifest["models"]["mtl.onnx"]["tasks"] == ["click", "conversion"]
    assert manifest["models"]["mtl.onnx"]["outputs"] == ["logit", "logit"]


def test_second_repro_does_nothing(project):
    assert ran(dvc(project, "repro")) == []


def test_changing_a_ranker_param_reruns_only_ranker_and_downstream(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_ranker"]["train"]["learning_rate"] = 0.002
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert sorted(ran(dvc(project, "repro"))) == ["evaluate", "export", "train_ranker"]


def test_watched_paths_become_dvc_deps_but_not_run_arguments():
    from dataclasses import replace

    from pipelines.render import stage_entry
    from pipelines.stages import BY_NAME

    stage = replace(BY_NAME["ingest"], watch=("data/external",))
    assert "data/external" in stage_entry(stage)["deps"]
    assert "data/external" not in stage.deps.values()
