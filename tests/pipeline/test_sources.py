"""Every public format ingest reads, end to end: tiny files written by the tests, then every stage.

For each format (``tests/sources``): ingest → validate → negative_sample → train_recall → build_index →
train_ranker → train_mtl → evaluate → export, with the params the README gives for that dataset. A stage
the data has nothing for (recall for Criteo, ranking for sequence files) records why; the figures the
format's protocol needs come out of evaluate, and the bundle holds the models there are.
"""

from __future__ import annotations

import importlib
import json

import pytest
import yaml

from pipelines.runner import run_stage
from pipelines.stages import STAGES
from tests.conftest import merge, tiny_params_dict

pytestmark = pytest.mark.slow

CONTEXT = {"train_ranker": {"model": {"groups": ["context"]}}, "train_mtl": {"model": {"groups": ["context"]}}}
SAMPLED = {"evaluate": {"protocol": {"name": "sampled", "negatives": 20, "k": 10, "seed": 23}}}
# format: (writer module, writer options, params beyond ingest, the parts it provides)
FORMATS = {
    "ml-1m": ("movielens", {"variant": "ml-1m"}, {"train_mtl": {"tasks": ["click", "rating"]}},
              {"recall", "ranking", "mtl"}),
    "ml-100k": ("movielens", {"variant": "ml-100k"}, {"train_mtl": {"tasks": ["click", "rating"]}},
                {"recall", "ranking", "mtl"}),
    "sasrec-pairs": ("sequences", {"format": "pairs"}, SAMPLED, {"recall"}),
    "s3rec-lists": ("sequences", {"format": "lists"}, SAMPLED, {"recall"}),
    "criteo": ("criteo", {}, CONTEXT, {"ranking"}),
    "census": ("census", {}, merge(CONTEXT, {"train_ranker": {"label": "income"},
                                             "train_mtl": {"tasks": ["income", "never_married"]}}),
               {"ranking", "mtl"}),
    "yoochoose": ("sessions", {"dataset": "yoochoose"}, {"evaluate": {"top_k": 20}}, {"recall"}),
    "diginetica": ("sessions", {"dataset": "diginetica"}, {"evaluate": {"top_k": 20}}, {"recall"}),
    "generic-csv": ("generic", {"kind": "csv"}, {"train_mtl": {"tasks": ["click", "purchase"]}},
                    {"recall", "ranking", "mtl"}),
    "generic-parquet": ("generic", {"kind": "parquet"}, {"train_mtl": {"tasks": ["click", "dwell"]}},
                        {"recall", "ranking", "mtl"}),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_stage_runs_on_the_format(name, tmp_path):
    module, options, extra, parts = FORMATS[name]
    ingest = importlib.import_module(f"tests.sources.{module}").write(tmp_path / "raw", **options)
    params = merge(tiny_params_dict(ingest=ingest, build_index={"kind": "flat"}), extra)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in STAGES:
        run_stage(stage.name, root=tmp_path)

    metrics = {p: json.loads((tmp_path / f"metrics/{p}.json").read_text()) for p in ("recall", "ranking", "mtl")}
    assert {p for p, figures in metrics.items() if figures} == parts, metrics
    manifest = json.loads((tmp_path / "bundle/manifest.json").read_text())
    exported = set(manifest["models"])
    assert ("user_tower.onnx" in exported) == ("recall" in parts)
    assert ("ranker.onnx" in exported) == ("ranking" in parts)
    assert ("mtl.onnx" in exported) == ("mtl" in parts)
    assert set(manifest["skipped"]) == {"recall", "ranking", "multi_task"} - {p.replace("mtl", "multi_task") for p in parts}
    if "recall" in parts:
        protocol, k = params["evaluate"]["protocol"], params["evaluate"]["top_k"]
        if protocol["name"] == "sampled":  # SASRec's: the held-out item against sampled unseen ones
            keys = [f"hr@{protocol['k']}", f"ndcg@{protocol['k']}"]
        elif module == "sessions":  # NARM's / STAMP's: every prefix of the test sessions
            keys = [f"p@{k}", f"mrr@{k}"]
            assert metrics["recall"][f"p@{k}"] == metrics["recall"][f"hit@{k}"]
        else:
            keys = [f"recall@{k}", f"ndcg@{k}"]
        assert all(0 <= metrics["recall"][key] <= 1 for key in keys), metrics["recall"]
        assert (tmp_path / "bundle/index.faiss").exists()
    else:
        assert json.loads((tmp_path / "models/recall/skipped.json").read_text())["stage"] == "train_recall"
    if "ranking" in parts:
        assert 0 <= metrics["ranking"]["auc"] <= 1 and 0 <= metrics["ranking"]["lr_auc"] <= 1
        assert metrics["ranking"]["logloss"] > 0
        assert ("gauc" in metrics["ranking"]) == (module not in ("criteo", "census"))  # per user, where there are users
    if "mtl" in parts:
        for task in params["train_mtl"]["tasks"]:
            assert f"{task}_auc" in metrics["mtl"] or f"{task}_rmse" in metrics["mtl"], metrics["mtl"]
    assert (tmp_path / "reports/validation.json").exists()
    assert json.loads((tmp_path / "data/processed/meta.json").read_text())["source"] == ingest["source"]
