"""train_ranker trains the ranker and its baseline on the label ``train_ranker.label`` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.artifacts import load_model, load_ranking, load_schema
from components.evaluate import evaluate_ranking
from components.io import read_json
from pipelines.cli import main
from pipelines.runner import run_stage
from rechub_core.metrics import auc
from rechub_core.training.trainer import predict
from tests.conftest import fork_project, prepare_project, tiny_params_dict

SIM_GROUPS = ["user", "item", "behavior", "long"]
SIM_SOFT = {"name": "sim", "search": "soft", "embed_dim": 8, "top_k": 8, "num_heads": 1, "gsu_dim": 4,
            "auxiliary_weight": 1.0, "mlp_dims": [16], "dropout": 0.0, "groups": SIM_GROUPS}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepare_project(tmp_path_factory.mktemp("ranker"), tiny_params_dict(), stages=("ingest", "validate"))


def test_the_ranker_learns_the_label_params_name_and_reads_it_first(prepared, tmp_path):
    fork_project(prepared, tmp_path, tiny_params_dict(train_ranker={"label": "conversion", "model": SIM_SOFT}))
    run_stage("train_ranker", root=tmp_path)
    model_dir = tmp_path / "models/ranker"
    assert read_json(model_dir / "model.json")["label"] == "conversion"
    assert read_json(model_dir / "baseline/model.json")["label"] == "conversion"
    model, _ = load_model(model_dir)
    assert model.label == "conversion"  # SIM's soft-search auxiliary task learns the trained label too
    processed = tmp_path / "data/processed"
    assert load_schema(processed).labels[0] == "click"  # the data's own order is untouched
    test = load_ranking(processed, "ranking_test", load_schema(processed), SIM_GROUPS)
    scores = predict(model, test)
    figures = evaluate_ranking(processed, model_dir)  # scored against the conversions, not the clicks
    assert figures["auc"] == pytest.approx(auc(test["conversion"].numpy(), scores))
    assert figures["auc"] != pytest.approx(auc(test["click"].numpy(), scores))


def test_a_label_the_data_lacks_is_named(prepared, tmp_path, capsys):
    fork_project(prepared, tmp_path, tiny_params_dict(train_ranker={"label": "like"}))
    assert main(["train_ranker", "--root", str(tmp_path)]) == 1
    assert "train_ranker.label: 'like' is not a binary label of the data; it has ['click', 'conversion']" in \
        capsys.readouterr().err
