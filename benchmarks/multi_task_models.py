"""Every registered multi-task model on the default data: the README's multi-task table.

    python -m benchmarks.multi_task_models [--quick] [--models mmoe esmm ...] [--balancing equal gradnorm ...]
                                          [--out benchmarks/results/multi_task_models.json]

Prepares the default data once (ingest and validate with the repository's
``params.yaml``) in a scratch project, then for each model (and each loss
balancing method asked for; default: the one in params.yaml) runs train_mtl
with the model's default hyper-parameters and the repository's tasks and
training settings (early-stopped on the time-ordered validation split), and
scores the last 10% of impressions by time: each task's AUC (RMSE for a
regression task), and for ESMM its conversion tower's AUC on clicked rows.
On the built-in data ESMM's pCVR is also scored over every test impression
against the generator's ``conversion_if_clicked``, next to the same conversion
tower trained on clicked impressions only (the ESMM paper's BASE).
A logistic regression per task, trained on that task alone with train_ranker's
baseline settings, is the reference row.

Prints a Markdown table and writes every figure to ``--out``. ``--quick``
uses a small generated data set (a smoke check, not the README's numbers).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ranking_models import prepared_project, repository_params  # noqa: E402
from components.evaluate import evaluate_mtl  # noqa: E402
from components.params import load  # noqa: E402
from pipelines.runner import run_stage  # noqa: E402
from rechub_core.models.registry import REGISTRY  # noqa: E402
from rechub_core.training.balancing import METHODS  # noqa: E402

BALANCING = {m.__dataclass_fields__["name"].default: m for m in METHODS}


def single_task_lr(project: Path, task: str) -> float:
    """Test AUC of a logistic regression trained on ``task`` alone (train_ranker's baseline settings)."""
    from components.artifacts import load_ranking
    from components.fit import fit_registered, ranking_tables
    from rechub_core.metrics import auc
    from rechub_core.models.ranking.linear import LogisticRegressionConfig
    from rechub_core.training.trainer import predict

    processed, groups = project / "data/processed", LogisticRegressionConfig().groups
    schema, train, valid = ranking_tables(processed, groups)
    test = load_ranking(processed, "ranking_test", schema, groups)
    ranker = load(project / "params.yaml").train_ranker
    lr, _ = fit_registered("ranking", LogisticRegressionConfig(), schema, train, valid, [task],
                           ranker.baseline_train, ranker.early_stopping, seed=0, desc=f"lr {task}")
    return auc(test[task].numpy(), predict(lr, test))


def conversion_if_clicked(project: Path, split: str = "ranking_test") -> np.ndarray:
    """The built-in generator's counterfactual label for each row of a ranking split: would the user have
    converted had they clicked (drawn for every impression; ``rechub_core.data.synthetic``)."""
    from components.io import read_parquet
    from rechub_core.data.synthetic import generate

    ingest = load(project / "params.yaml").ingest
    if ingest.source != "synthetic":
        raise ValueError(f"{project}: conversion_if_clicked needs the built-in data (ingest.source: synthetic)")
    tables = generate(ingest.synthetic)
    logged = tables["impressions"].select(["user_id", "item_id", "ts"]).to_pandas()
    logged["label"] = tables["counterfactual"].column("conversion_if_clicked").to_numpy()
    vocab = project / "data/processed/vocab"
    for column in ("user_id", "item_id"):  # raw ids -> the encoded ids of the ranking rows
        ids = read_parquet(vocab / f"{column}.parquet").to_pandas().set_index("raw")["id"]
        logged[column] = logged[column].map(ids)
    if logged.duplicated(["user_id", "item_id", "ts"]).any():
        raise ValueError("the generator logged two impressions of one item to one user at one second")
    rows = read_parquet(project / f"data/processed/{split}.parquet", ["user_id", "item_id", "ts"]).to_pandas()
    joined = rows.merge(logged, on=["user_id", "item_id", "ts"], how="left", validate="one_to_one")
    return joined["label"].to_numpy()


class ConversionTower(nn.Module):
    """ESMM's embeddings and conversion tower alone, ``(B,)`` pCVR logits: the ESMM paper's BASE model
    (Sec. 4.1), which trained on clicked impressions only is the conversion model ESMM was built to beat."""

    def __init__(self, esmm: nn.Module):
        super().__init__()
        self.esmm = esmm

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.esmm.conditional_logits(batch)[:, 1]  # (B,); the click tower gets no gradient


def entire_space_conversion(project: Path, esmm_model: Path) -> dict[str, float]:
    """AUC against ``conversion_if_clicked`` over every test impression, clicked or not, of ESMM's pCVR
    (from ``esmm_model``) and of its conversion tower trained on clicked impressions only, with the
    project's ``train_mtl`` settings."""
    from components.artifacts import load_model, load_ranking, reproducible
    from components.fit import ranking_tables
    from rechub_core.data.tables import TensorTable
    from rechub_core.metrics import auc
    from rechub_core.models.registry import build
    from rechub_core.training.trainer import fit_pointwise, predict

    mtl = load(project / "params.yaml").train_mtl
    esmm, meta = load_model(esmm_model)
    if meta["config"]["name"] != "esmm" or meta["tasks"][:2] != ["click", "conversion"]:
        raise ValueError(f"{esmm_model}: not an ESMM model of [click, conversion, ...]")
    config = REGISTRY["multi_task"]["esmm"].config(**meta["config"])
    processed = project / "data/processed"
    schema, train, valid = ranking_tables(processed, config.groups)
    test = load_ranking(processed, "ranking_test", schema, config.groups)
    clicked = {name: TensorTable(t.take(t["click"] == 1)) for name, t in (("train", train), ("valid", valid))}
    with reproducible(mtl.seed):
        tower = ConversionTower(build("multi_task", config, schema, num_tasks=len(meta["tasks"])))
        fit_pointwise(tower, clicked["train"], ["conversion"], mtl.train, generator=torch.Generator().manual_seed(mtl.seed),
                      valid=clicked["valid"], early_stopping=mtl.early_stopping, desc="conversion on clicked rows")
    labels = conversion_if_clicked(project)
    esmm_pcvr = predict(esmm.conditional_logits, test).reshape(len(test), -1)[:, 1]
    return {"esmm_conversion_if_clicked_auc": auc(labels, esmm_pcvr),
            "clicked_only_conversion_if_clicked_auc": auc(labels, predict(tower, test))}


def measure(project: Path, name: str, balancing: dict | None) -> dict:
    """Train ``name`` with its default config (and ``balancing``, if given) in ``project`` and score it."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_mtl"]["model"] = asdict(REGISTRY["multi_task"][name].config())
    if balancing is not None:
        params["train_mtl"]["balancing"] = balancing
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    run_stage("train_mtl", root=project)
    seconds = time.perf_counter() - start
    figures = evaluate_mtl(project / "data/processed", project / "models/mtl")
    history = json.loads((project / "plots/train_mtl.json").read_text())
    return {"model": name, "balancing": params["train_mtl"]["balancing"]["name"], "train_seconds": round(seconds, 1),
            "epochs": len(history), **figures}


def table(rows: list[dict], tasks: list[str], lr: dict[str, float]) -> str:
    cols = [f"{t}_auc" if f"{t}_auc" in rows[0] else f"{t}_rmse" for t in tasks]
    lines = ["| model | balancing | " + " | ".join(cols) + " | epochs | train s |", "|" + "---|" * (len(cols) + 4)]
    for r in rows:
        cells = " | ".join(f"{r[c]:.4f}" for c in cols)
        lines.append(f"| {r['model']} | {r['balancing']} | {cells} | {r['epochs']} | {r['train_seconds']:.0f} |")
    cells = " | ".join(f"{lr[t]:.4f}" if t in lr else "" for t in tasks)
    lines.append(f"| logistic regression, one per task | | {cells} | | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke check")
    parser.add_argument("--models", nargs="+", choices=sorted(REGISTRY["multi_task"]),
                        default=sorted(REGISTRY["multi_task"]))
    parser.add_argument("--balancing", nargs="+", choices=sorted(BALANCING),
                        help="methods with their default settings (default: params.yaml's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "multi_task_models.json"))
    args = parser.parse_args()

    params = repository_params(args.quick)
    tasks = params["train_mtl"]["tasks"]
    methods = [asdict(BALANCING[m]()) for m in args.balancing] if args.balancing else [None]
    for m in methods:
        if m is not None and "weights" in m:
            m["weights"] = [1.0] * len(tasks)
    rows = []
    with prepared_project(params) as project:
        schema_labels = json.loads((project / "data/processed/schema.json").read_text())["labels"]
        lr = {t: single_task_lr(project, t) for t in tasks if t in schema_labels}
        print(json.dumps({"logistic_regression": lr}), flush=True)
        for name in args.models:
            for balancing in methods:
                rows.append(measure(project, name, balancing))
                if name == "esmm" and params["ingest"]["source"] == "synthetic" and tasks[:2] == ["click", "conversion"]:
                    rows[-1].update(entire_space_conversion(project, project / "models/mtl"))
                print(json.dumps(rows[-1]), flush=True)
                shutil.rmtree(project / "models")
    print(table(rows, tasks, lr))
    for r in rows:
        if "clicked_only_conversion_if_clicked_auc" in r:
            print(f"ESMM ({r['balancing']}) pCVR over every test impression, AUC against conversion_if_clicked: "
                  f"{r['esmm_conversion_if_clicked_auc']:.4f}; its conversion tower trained on clicked rows only: "
                  f"{r['clicked_only_conversion_if_clicked_auc']:.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "logistic_regression": lr, "models": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
