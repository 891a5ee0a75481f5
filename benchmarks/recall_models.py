"""Every registered recall model on the default data: the README's model table.

    python -m benchmarks.recall_models [--quick] [--models dssm sasrec ...] [--augmentation none ticoserec]
                                       [--out benchmarks/results/recall_models.json]

Prepares the default data once (ingest, validate, negative_sample with the
repository's ``params.yaml``) in a scratch project, then for each model runs
train_recall with its paper's objective and negatives (``rechub models``
lists them) and the model's default hyper-parameters, build_index, and both evaluation
protocols:

- full ranking over every item, training items excluded: recall@50,
  NDCG@50, MRR@50, and recall@50 on the order-driven test rows (the target
  follows the user's last item as it does at least twice in training);
- the sampled protocol of the sequential papers: the held-out item against
  100 unseen items drawn uniformly, HR@10 and NDCG@10.

``--augmentation none ticoserec`` trains each model once per augmentation
(``train_recall.augmentation`` with its default settings; default: none), to
measure what TiCoSeRec's contrastive loss adds.

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

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ranking_models import prepared_project  # noqa: E402
from components.evaluate import RecallData, evaluate_recall, full_ranking_figures, sequence_driven  # noqa: E402
from components.params import AUGMENTED_ELSEWHERE, EvaluateParams, load  # noqa: E402
from pipelines.runner import run_stage  # noqa: E402
from rechub_core.data.augment import AUGMENTATIONS  # noqa: E402
from rechub_core.models.registry import REGISTRY  # noqa: E402
from rechub_core.training.objectives import NextItem, SessionParallel  # noqa: E402

QUICK = {"n_users": 500, "n_items": 300, "n_clusters": 8, "min_events": 6, "max_events": 40, "impressions_per_user": 20}
K = 50
AUGMENTATIONS_BY_NAME = {cls.__dataclass_fields__["name"].default: cls for cls in AUGMENTATIONS}
SAMPLED = {"name": "sampled", "negatives": 100, "k": 10, "seed": 23}


def train_settings(objective, base: dict) -> dict:
    """Training settings by objective: per-user sequence objectives see one example per user an epoch."""
    if isinstance(objective, NextItem):
        return dict(base, epochs=40, batch_size=128)
    if isinstance(objective, SessionParallel):
        return dict(base, epochs=10, batch_size=256)
    return base


def measure(project: Path, name: str, base: dict, augmentation: str = "none") -> dict:
    """Train, index and evaluate ``name`` in ``project`` (prepared with ``base`` params)."""
    entry = REGISTRY["matching"][name]
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_recall"].update(
        model=asdict(entry.config()), objective=asdict(entry.paper),
        train=train_settings(entry.paper, base["train_recall"]["train"]),
        augmentation=asdict(AUGMENTATIONS_BY_NAME[augmentation]()),
    )
    sampling = {**base["negative_sample"], **entry.negatives}
    resample = sampling != params["negative_sample"]
    params["negative_sample"] = sampling
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if resample:  # the paper's negatives differ from those on disk
        run_stage("negative_sample", root=project)
    start = time.perf_counter()
    run_stage("train_recall", root=project)
    seconds = time.perf_counter() - start
    run_stage("build_index", root=project)
    processed, model = project / "data/processed", project / "models/recall"
    data = RecallData(processed, model)
    full = full_ranking_figures(data, K)
    ordered = full_ranking_figures(data, K, sequence_driven(processed))
    evaluate = load(project / "params.yaml").evaluate
    sampled = evaluate_recall(
        EvaluateParams(**{**evaluate.model_dump(), "protocol": SAMPLED}), processed, model, project / "models/index"
    )
    return {
        "model": name,
        "objective": entry.paper.name,
        "augmentation": augmentation,
        "train_seconds": round(seconds, 1),
        **full,
        f"ordered_recall@{K}": ordered[f"recall@{K}"],
        f"ordered_popularity_recall@{K}": ordered[f"popularity_recall@{K}"],
        **{key: sampled[key] for key in ("hr@10", "ndcg@10", "popularity_hr@10")},
    }


def table(rows: list[dict]) -> str:
    head = (
        f"| model | paper objective | recall@{K} | NDCG@{K} | MRR@{K} | order-driven recall@{K} "
        "| HR@10 (100 sampled) | NDCG@10 (100 sampled) | train s |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        model = r["model"] if r.get("augmentation", "none") == "none" else f"{r['model']} + {r['augmentation']}"
        lines.append(
            f"| {model} | {r['objective']} | {r[f'recall@{K}']:.4f} | {r[f'ndcg@{K}']:.4f} | {r[f'mrr@{K}']:.4f} "
            f"| {r[f'ordered_recall@{K}']:.4f} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['train_seconds']:.0f} |"
        )
    pop = rows[0]
    lines.append(
        f"| popularity | - | {pop[f'popularity_recall@{K}']:.4f} | | | {pop[f'ordered_popularity_recall@{K}']:.4f} "
        f"| {pop['popularity_hr@10']:.4f} | | |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke check")
    parser.add_argument("--models", nargs="+", choices=sorted(REGISTRY["matching"]), default=sorted(REGISTRY["matching"]))
    parser.add_argument("--augmentation", nargs="+", choices=sorted(AUGMENTATIONS_BY_NAME), default=["none"],
                        help="train each model once per augmentation, with its default settings")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recall_models.json"))
    args = parser.parse_args()
    if args.augmentation != ["none"]:
        refused = [n for n in args.models if REGISTRY["matching"][n].paper.name in AUGMENTED_ELSEWHERE]
        if refused:
            parser.error(f"--augmentation: {refused} train with objectives that take none ({', '.join(AUGMENTED_ELSEWHERE)})")

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if args.quick:
        params["ingest"]["synthetic"].update(QUICK)
        params["ingest"]["history_len"] = 10
    params["build_index"]["kind"] = "flat"
    rows = []
    with prepared_project(params, ("ingest", "validate", "negative_sample")) as project:
        for name in args.models:
            for augmentation in args.augmentation:
                rows.append(measure(project, name, params, augmentation))
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
