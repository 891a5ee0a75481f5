"""Every registered ranking (CTR) model on the default data: the README's ranking table.

    python -m benchmarks.ranking_models [--quick] [--models deepfm din ...] [--out benchmarks/results/ranking_models.json]

Prepares the default data once (ingest and validate with the repository's
``params.yaml``) in a scratch project, then for each model runs train_ranker
with the model's default hyper-parameters and the repository's training
settings (early-stopped on the time-ordered validation split), and scores the
last 10% of impressions by time: AUC, logloss, GAUC (per-user AUC,
impression-weighted), the AUC on the behaviour-driven rows (the item's
category occurs in the user's history), and the logistic regression's AUC.

Prints a Markdown table and writes every figure to ``--out``. ``--quick``
uses a small generated data set (a smoke check, not the README's numbers).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.evaluate import evaluate_ranking  # noqa: E402
from pipelines.runner import run_stage  # noqa: E402
from rechub_core.models.registry import REGISTRY  # noqa: E402

QUICK = {
    "synthetic": {
        "n_users": 500, "n_items": 300, "n_clusters": 8, "min_events": 6, "max_events": 40,
        "impressions_per_user": 20, "min_behaviors": 50, "max_behaviors": 200,
    },
    "history_len": 10,
    "long_history_len": 100,
}


def repository_params(quick: bool) -> dict:
    """The repository's ``params.yaml``; with ``quick``, on the small ``QUICK`` data."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if quick:
        params["ingest"]["synthetic"].update(QUICK["synthetic"])
        params["ingest"].update({k: v for k, v in QUICK.items() if k != "synthetic"})
    return params


@contextmanager
def prepared_project(params: dict, stages: tuple[str, ...] = ("ingest", "validate")) -> Iterator[Path]:
    """A scratch project holding ``params`` as its ``params.yaml``, with ``stages`` run; removed afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for stage in stages:
            run_stage(stage, root=project)
        yield project


def measure(project: Path, name: str) -> dict:
    """Train ``name`` with its default config in ``project`` and score it."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_ranker"]["model"] = asdict(REGISTRY["ranking"][name].config())
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    run_stage("train_ranker", root=project)  # the model, then the logistic regression
    seconds = time.perf_counter() - start
    figures = evaluate_ranking(project / "data/processed", project / "models/ranker")
    history = json.loads((project / "plots/train_ranker.json").read_text())
    return {"model": name, "train_seconds": round(seconds, 1), "epochs": len(history), **figures}


def table(rows: list[dict]) -> str:
    lines = [
        "| model | AUC | logloss | GAUC | AUC, history holds the item's category | epochs | train s |",
        "|" + "---|" * 7,
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['auc']:.4f} | {r['logloss']:.4f} | {r['gauc']:.4f} "
            f"| {r.get('behavior_auc', float('nan')):.4f} | {r['epochs']} | {r['train_seconds']:.0f} |"
        )
    lines.append(f"| logistic regression | {rows[0]['lr_auc']:.4f} | | | | | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke check")
    parser.add_argument("--models", nargs="+", choices=sorted(REGISTRY["ranking"]), default=sorted(REGISTRY["ranking"]))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ranking_models.json"))
    args = parser.parse_args()

    params = repository_params(args.quick)
    rows = []
    with prepared_project(params) as project:
        for name in args.models:
            rows.append(measure(project, name))
            print(json.dumps(rows[-1]), flush=True)
            shutil.rmtree(project / "models")
    print(table(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "models": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
