"""params.yaml validation: unknown, missing and mistyped keys fail with the key's path."""

import json

import pytest
import yaml

from components.params import Params, ParamsError, load, parse
from pipelines.cli import main
from rechub_core.models.registry import names
from tests.conftest import ROOT


def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repository_params_load():
    params = load(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert params.train_ranker.model.name == "deepfm"


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda p: p["train_ranker"]["train"].update(epochz=3), "train_ranker.train.epochz: unknown key"),
        (lambda p: p["ingest"].update(sourse="files"), "ingest.sourse: unknown key"),
        (lambda p: p["train_recall"]["model"].update(depth=3), "train_recall.model.depth: unknown key"),
        (lambda p: p.update(extra_section={}), "extra_section: unknown key"),
        (lambda p: p["evaluate"].pop("top_k"), "evaluate.top_k: missing key"),
        (lambda p: p["train_ranker"]["model"].pop("dropout"), "train_ranker.model.dropout: missing key"),
        (lambda p: p["ingest"]["synthetic"].pop("seed"), "ingest.synthetic.seed: missing key"),
        (lambda p: p.pop("export"), "export: missing key"),
        (lambda p: p["train_mtl"]["train"].update(epochs="many"), "train_mtl.train.epochs: Input should be a valid integer"),
        (lambda p: p["train_ranker"]["model"].update(mlp_dims="big"), "train_ranker.model.mlp_dims: Input should be a valid list"),
        (lambda p: p["ingest"].update(source="kafka"), "ingest.source: Input should be 'synthetic', 'files', 'movielens', 'sequences', 'criteo', 'census', 'sessions' or 'generic'"),
        (lambda p: p["train_recall"]["model"].update(name="nope"), "train_recall.model.name"),
        (lambda p: p["negative_sample"].update(num_negatives=0), "negative_sample.num_negatives"),
        (lambda p: p["train_mtl"].update(tasks=["click", "click"]), "train_mtl: Value error, tasks: each task once"),
        (lambda p: p["train_mtl"].update(tasks=[]), "train_mtl.tasks: List should have at least 1 item"),
        (lambda p: p["train_mtl"].update(balancing={"name": "fixed", "weights": [1.0]}),
         "train_mtl: Value error, balancing.weights: one weight per task"),
        (lambda p: p["train_mtl"].update(balancing={"name": "fixed", "weights": [-1.0, 1.0]}),
         "train_mtl.balancing: Value error, weights must be non-negative"),
        (lambda p: p["train_mtl"].update(balancing={"name": "metabalance", "target": "ctr", "relax": 0.7, "beta": 0.9}),
         "train_mtl: Value error, balancing.target: 'ctr' is not one of the tasks"),
        (lambda p: p["train_mtl"].update(balancing={"name": "gradnorm", "alpha": 1.5}),
         "train_mtl.balancing.learning_rate: missing key"),
        (lambda p: p["train_mtl"].update(balancing={"name": "pcgrad"}), "train_mtl.balancing.name: Input should be"),
        (lambda p: p["train_mtl"].update(tasks=["click"], model={
            "name": "esmm", "embed_dim": 16, "tower_dims": [64], "dropout": 0.1, "groups": ["user", "item"]}),
         "train_mtl: Value error, tasks: model 'esmm' models a funnel and needs at least two tasks"),
        (lambda p: p["train_mtl"]["model"].update(groups=["usr"]), "train_mtl.model.groups.0: Input should be 'user', 'item', 'context', 'behavior' or 'long'"),
        (lambda p: p["train_recall"]["model"].update(tower_dims=[]), "train_recall.model: Value error, tower_dims must not be empty"),
        (lambda p: p["train_mtl"]["model"].update(expert_dims=[]), "train_mtl.model: Value error, expert_dims must not be empty"),
        (lambda p: p["train_ranker"]["model"].update(mlp_dims=[0]), "train_ranker.model: Value error, mlp_dims must hold positive"),
        (lambda p: p["train_recall"]["objective"].update(name="softmax"), "train_recall.objective.name: Input should be one of"),
        (lambda p: p["train_recall"]["objective"].update(temperature=0), "train_recall.objective: Value error, temperature must be positive"),
        (lambda p: p["train_recall"]["objective"].update(logq_correction="yes"), "train_recall.objective.logq_correction: Input should be 'none', 'counts' or 'streaming'"),
        (lambda p: p["train_recall"]["objective"].pop("temperature"), "train_recall.objective.temperature: missing key"),
        (lambda p: p["train_recall"].update(objective={"name": "next_item"}), "train_recall: Value error, objective 'next_item' is specific to ['sasrec']"),
        (lambda p: p["evaluate"]["protocol"].update(name="sampled"), "evaluate.protocol.negatives: missing key"),
        (lambda p: p["evaluate"].update(diversity=-1), "evaluate.diversity: Input should be greater than or equal to 0"),
        (lambda p: p["ingest"].update(source="movielens"), "ingest: Value error, source 'movielens' reads its settings from ingest.movielens, which is missing"),
        (lambda p: p["ingest"].update(source="sessions", k_core=5, sessions={
            "dataset": "yoochoose", "file": "x.dat", "test_days": 1, "min_item_count": 5, "fraction": 64}),
         "ingest: Value error, source 'sessions' prepares and splits its sessions itself"),
        (lambda p: p["ingest"].update(source="sequences", sequences={"file": "x.txt", "format": "pairs"},
                                      recall_split={"name": "time_ratio", "test_fraction": 0.1}),
         "ingest: Value error, source 'sequences' has no times"),
    ],
)
def test_bad_params_name_the_key(edit, message):
    p = raw()
    edit(p)
    with pytest.raises(ParamsError) as err:
        parse(p, "params.yaml")
    assert f"params.yaml: {message}" in str(err.value)


def test_invalid_config_values_are_rejected_by_the_library_configs():
    p = raw()
    p["ingest"]["synthetic"]["min_events"] = 1
    with pytest.raises(ParamsError, match="min_events"):
        parse(p)


def test_cli_reports_bad_params_and_exits_nonzero(tmp_path, capsys):
    p = raw()
    p["train_ranker"]["train"]["epochz"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    assert main(["train_ranker", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rechub train_ranker: error: ")
    assert err.endswith("params.yaml: train_ranker.train.epochz: unknown key")
    assert len(err.splitlines()) == 1


def test_missing_params_file(tmp_path, capsys):
    assert main(["evaluate", "--root", str(tmp_path)]) == 1
    assert "no such params file" in capsys.readouterr().err


def test_models_json_lists_the_registry(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing == names()
    assert set(listing) == {"matching", "ranking", "multi_task"}
    assert "dssm" in listing["matching"] and "deepfm" in listing["ranking"] and "mmoe" in listing["multi_task"]


def test_every_paper_recipe_is_valid_params(capsys):
    """``rechub models`` prints each matching model's paper objective and negatives; each must load as params."""
    from dataclasses import asdict

    from rechub_core.models.registry import REGISTRY

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, entry in REGISTRY["matching"].items():
        params = parse({
            **base,
            "negative_sample": {**base["negative_sample"], **entry.negatives},
            "train_recall": {**base["train_recall"], "model": asdict(entry.config()), "objective": asdict(entry.paper)},
        })
        assert params.train_recall.objective == entry.paper, name
    assert main(["models"]) == 0
    assert 'facebook_dssm  {"name": "triplet"' in capsys.readouterr().out
