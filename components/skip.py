"""Stages a source's data has nothing for: recorded, not run.

Every source runs the same stage graph (``dvc.yaml``, the DAG), but not every
source feeds every stage: Criteo and Census-Income have labelled rows and no
interactions (nothing for recall), sequence files and session logs have
interactions and no labelled rows (nothing for ranking), and a multi-task
model needs two label columns. Ingest records what the data provides in
``meta.json``; a stage with nothing to do writes its outputs as a record of
why (``skipped.json`` in its directory, ``{}`` for its metrics, ``[]`` for
its plots), prints the reason, and the stages after it pass that on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from components.io import atomic_dir, read_json, write_json

SKIPPED = "skipped.json"
Part = Literal["recall", "ranking", "multi_task"]
_NEEDS = {"recall": "interactions (recall)", "ranking": "labelled rows (ranking)"}


def reason(processed: Path, part: Part) -> str | None:
    """Why the processed data gives ``part`` nothing to train on; None if it does."""
    meta = read_json(Path(processed) / "meta.json")
    provides = meta.get("provides", {"recall": True, "ranking": True})
    source = meta.get("source", "?")
    if part == "multi_task":
        if not provides["ranking"]:
            return f"source {source!r} has no {_NEEDS['ranking']}"
        schema = read_json(Path(processed) / "schema.json")
        tasks = [*schema["labels"], *schema.get("values", [])]
        if len(tasks) < 2:
            return f"source {source!r} has one label column ({tasks}); a multi-task model needs two"
        return None
    return None if provides[part] else f"source {source!r} has no {_NEEDS[part]}"


def skipped(directory: Path) -> str | None:
    """The reason recorded in a skipped stage's output directory; None if the stage ran."""
    path = Path(directory) / SKIPPED
    return read_json(path)["reason"] if path.exists() else None


def record(stage: str, why: str, directory: Path, *, metrics: tuple[Path, ...] = (), plots: tuple[Path, ...] = ()) -> dict:
    """Write a skipped stage's outputs: ``directory/skipped.json``, empty metrics and plots."""
    print(f"{stage}: skipped: {why}", flush=True)
    with atomic_dir(directory) as out:
        write_json(out / SKIPPED, {"stage": stage, "reason": why})
    for path in metrics:
        write_json(path, {})
    for path in plots:
        write_json(path, [])
    return {"skipped": why}
