"""The ``rechub`` command: one sub-command per stage, plus ``models`` and ``summary``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipelines.stages import STAGES

SUMMARY_FILES = ("recall", "index", "ranking", "mtl", "export")


def _models(as_json: bool) -> None:
    from dataclasses import asdict

    from rechub_core.models.registry import REGISTRY, names

    listing = names()
    if as_json:
        print(json.dumps(listing))
        return
    for family, models in listing.items():
        print(f"{family}: {', '.join(models)}")
    print("\nmatching models and what their paper trains with (train_recall.objective, and negative_sample where set):")
    for name in listing["matching"]:
        entry = REGISTRY["matching"][name]
        negatives = f"  negative_sample: {json.dumps(entry.negatives)}" if entry.negatives else ""
        print(f"  {name:<14} {json.dumps(asdict(entry.paper))}{negatives}")


def _summary(root: Path) -> int:
    missing = []
    for name in SUMMARY_FILES:
        path = root / "metrics" / f"{name}.json"
        if not path.exists():
            missing.append(str(path))
            continue
        figures = json.loads(path.read_text())
        shown = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
        print(f"{name:<8} {shown}")
    if missing:
        print(f"missing metrics (run `dvc repro`): {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rechub", description="rechub pipeline stages and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        p = sub.add_parser(stage.name, help=f"run the {stage.name} stage")
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        p.add_argument("--root", default=".", help="project root the stage's paths are relative to")
    p = sub.add_parser("models", help="list registered models by family")
    p.add_argument("--json", action="store_true", help="print {family: [names]} as JSON")
    p = sub.add_parser("summary", help="print the metrics of the last run")
    p.add_argument("--root", default=".")
    args = parser.parse_args(argv)

    if args.command == "models":
        _models(args.json)
        return 0
    if args.command == "summary":
        return _summary(Path(args.root))

    from components.errors import RechubError
    from pipelines.runner import run_stage

    try:
        run_stage(args.command, params_path=args.params, root=args.root)
    except RechubError as exc:
        print(f"rechub {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
