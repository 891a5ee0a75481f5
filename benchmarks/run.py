"""Training throughput, memory, data preparation and quality, optionally head to head with torch-rechub.

    python -m benchmarks.run [--quick] [--vs torch-rechub] [--models deepfm,dssm,...]
                             [--rows N] [--stream] [--out benchmarks/results.json]

Generates the fixed synthetic data once (``benchmarks/.data/``), then trains
each model in its own process and scores its predictions here, with one
metric function for both libraries: test AUC (MMoE: mean over its two
tasks), recall@50 (DSSM) and NDCG@10 (SASRec) by full ranking of every item
for each user's held-out last event, the user's training items excluded.
``--vs torch-rechub`` installs torch-rechub from PyPI into
``benchmarks/.venv-torch-rechub`` (never a dependency of this project) and
runs the same models on the same files and hyper-parameters with its own
trainers and data utilities, the two libraries alternating first per model so
machine noise hits both. Peak RSS is each training process's own maximum.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from benchmarks import data
from rechub_core.data.sequences import last_of_user
from rechub_core.metrics import auc, topk_metrics

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "benchmarks" / ".data"
PEER = "torch-rechub"

CTR = {"embed_dim": 16, "mlp_dims": [256, 128], "batch_size": 4096, "learning_rate": 1e-3, "epochs": 1, "dropout": 0.0}
CONFIGS: dict[str, dict] = {
    "deepfm": CTR,
    "dcnv2": {**CTR, "num_cross_layers": 3, "structure": "parallel"},
    "mmoe": {
        "embed_dim": 16,
        "num_experts": 4,
        "expert_dims": [128],
        "tower_dims": [64],
        "batch_size": 4096,
        "learning_rate": 1e-3,
        "epochs": 1,
        "dropout": 0.0,
    },
    "dssm": {
        "embed_dim": 32,
        "tower_dims": [128, 64],
        "temperature": 0.05,
        "batch_size": 2048,
        "learning_rate": 1e-3,
        "epochs": 1,
        "max_len": 50,
        "dropout": 0.0,
    },
    "sasrec": {
        "embed_dim": 64,
        "num_blocks": 2,
        "num_heads": 1,
        "max_len": 50,
        "dropout": 0.2,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "epochs": 1,
    },
}
METRIC = {"deepfm": "auc", "dcnv2": "auc", "mmoe": "auc", "dssm": "recall@50", "sasrec": "ndcg@10"}


def _run(command: list[str], log: Path) -> dict:
    """Run one training process; its own peak RSS comes from ``wait4``."""
    with log.open("w") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed:\n{log.read_text()[-3000:]}")
    return {"peak_rss_mb": usage.ru_maxrss / 1024}


def score_ctr(model: str, data_dir: Path, out: Path) -> tuple[float, dict]:
    scores = np.load(out / "scores.npy")
    labels = pq.read_table(data_dir / "ctr_test.parquet", columns=["click", "conversion"])
    if model == "mmoe":
        scores = scores.reshape(len(scores), -1)  # (N, 2)
        per_task = {n: auc(labels.column(n).to_numpy(), scores[:, t]) for t, n in enumerate(("click", "conversion"))}
        return float(np.mean(list(per_task.values()))), {f"{n}_auc": v for n, v in per_task.items()}
    return auc(labels.column("click").to_numpy(), scores.reshape(-1)), {}


def score_recall(data_dir: Path, out: Path, k: int, metric: str, chunk: int = 4096) -> tuple[float, dict]:
    """Full ranking of every item for each user's last event, the user's training items excluded."""
    log = pq.read_table(data_dir / "recall_interactions.parquet", columns=["user_id", "item_id"])
    user, item = log.column("user_id").to_numpy(), log.column("item_id").to_numpy()
    last = last_of_user(user)
    first = np.r_[True, user[1:] != user[:-1]]
    test = last & ~first  # users with at least two events
    targets = np.zeros(user.max() + 1, dtype=np.int64)
    targets[user[test]] = item[test]
    train_user, train_item = user[~test], item[~test]
    users = torch.from_numpy(np.load(out / "user_vectors.npy"))
    items = torch.from_numpy(np.load(out / "item_vectors.npy"))
    test_users = np.unique(user[test])
    retrieved = []
    for s in range(0, len(test_users), chunk):
        batch = test_users[s : s + chunk]
        scores = users[batch - 1] @ items.T  # (b, I), column j = item j + 1
        lo, hi = np.searchsorted(train_user, [batch[0], batch[-1] + 1])  # this chunk's training rows
        rows = np.searchsorted(batch, train_user[lo:hi])
        scores[rows, train_item[lo:hi] - 1] = -torch.inf
        retrieved.append(scores.topk(k, dim=1).indices.numpy() + 1)
    figures = topk_metrics(np.concatenate(retrieved), targets[test_users][:, None], k)
    return figures[metric], {name: figures[name] for name in figures}


def score(model: str, data_dir: Path, out: Path) -> tuple[float, dict]:
    if model == "dssm":
        return score_recall(data_dir, out, 50, "recall@50")
    if model == "sasrec":
        return score_recall(data_dir, out, 10, "ndcg@10")
    return score_ctr(model, data_dir, out)


def measure(library: str, model: str, data_dir: Path, scratch: Path, python: Path | None, stream: bool) -> dict:
    out = scratch / f"{library}-{model}"
    config = json.dumps(CONFIGS[model])
    if library == "rechub":
        command = [sys.executable, "-m", "benchmarks.ours", "--model", model]
        command += ["--stream"] if stream and model in {"deepfm", "dcnv2", "mmoe"} else []
    else:
        command = [str(python), str(ROOT / "benchmarks" / "peers" / "torch_rechub_runner.py"), "--model", model]
    command += ["--data", str(data_dir), "--out", str(out), "--config", config]
    print(f"  {library:<13} {model:<7} ...", end="", flush=True)
    rss = _run(command, scratch / f"{library}-{model}.log")
    result = json.loads((out / "result.json").read_text())
    value, extra = score(model, data_dir, out)
    record = {
        "rows": result["train_samples"] // CONFIGS[model]["epochs"],  # training samples in one epoch
        "samples_per_s": result["train_samples"] / result["train_s"],
        "train_s": result["train_s"],
        "peak_rss_mb": rss["peak_rss_mb"],
        "prep_s": result["prep_s"],
        "metric": METRIC[model],
        "value": value,
        "detail": extra,
        "notes": result.get("notes", ""),
    }
    print(f" {record['samples_per_s']:>10,.0f} samples/s  {record['metric']} {value:.4f}", flush=True)
    return record


def table(records: list[dict], head_to_head: bool) -> str:
    header = f"{'model':<8} {'rows':>10} {'samples/s':>11} {'peak RSS MB':>12} {'prep s':>8} {'metric':>10} {'value':>7}"
    if head_to_head:
        header += f" | {'peer samples/s':>14} {'peer RSS MB':>11} {'peer prep s':>11} {'peer value':>10} | {'speed-up':>8}"
    lines = [header, "-" * len(header)]
    for r in records:
        line = (
            f"{r['model']:<8} {r['rows']:>10,} {r['samples_per_s']:>11,.0f} {r['peak_rss_mb']:>12,.0f} "
            f"{r['prep_s']:>8.2f} {r['metric']:>10} {r['value']:>7.4f}"
        )
        if head_to_head:
            p = r["peer"]
            line += (
                f" | {p['samples_per_s']:>14,.0f} {p['peak_rss_mb']:>11,.0f} {p['prep_s']:>11.2f} {p['value']:>10.4f}"
                f" | {r['throughput_ratio']:>7.2f}x"
            )
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data (100k CTR rows, 5k users): a smoke check")
    parser.add_argument("--vs", choices=[PEER], help="also run the reference library, head to head")
    parser.add_argument("--models", default=",".join(CONFIGS), help=f"comma-separated, from {','.join(CONFIGS)}")
    parser.add_argument("--rows", type=int, help="CTR rows to generate (default 1,000,000; quick 100,000)")
    parser.add_argument("--stream", action="store_true", help="rechub streams CTR training rows from Parquet row groups")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = parser.parse_args(argv)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(CONFIGS)}")
    shapes = data.QUICK if args.quick else data.Shapes()
    if args.rows:
        shapes = dataclasses.replace(shapes, ctr_rows=args.rows)
    start = time.perf_counter()
    data_dir = data.ensure(DATA_DIR, shapes)
    print(f"data: {data_dir.relative_to(ROOT)} ({time.perf_counter() - start:.1f} s)")
    python = None
    if args.vs:
        from benchmarks.peers.torch_rechub_env import ensure_env

        python = ensure_env(ROOT)

    records = []
    with tempfile.TemporaryDirectory(prefix="rechub-bench-") as tmp:
        scratch = Path(tmp)
        for i, model in enumerate(models):
            libraries = ["rechub", PEER] if args.vs else ["rechub"]
            if i % 2:  # alternate which library goes first
                libraries.reverse()
            runs = {lib: measure(lib, model, data_dir, scratch, python, args.stream) for lib in libraries}
            ours = runs["rechub"]
            record = {"model": model, **ours}
            if args.vs:
                peer = runs[PEER]
                record["peer"] = {"library": PEER, **peer}
                record["throughput_ratio"] = ours["samples_per_s"] / peer["samples_per_s"]
                record["prep_ratio"] = peer["prep_s"] / max(ours["prep_s"], 1e-9)
            records.append(record)
    print()
    print(table(records, bool(args.vs)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"quick": args.quick, "shapes": dataclasses.asdict(shapes), "stream": args.stream, "threads": torch.get_num_threads()}
    args.out.write_text(json.dumps({"run": meta, "results": records}, indent=2))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
