"""Run one stage in-process: load params, hand the component its sections and paths."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from pipelines.stages import BY_NAME


def run_stage(name: str, *, params_path: str | Path = "params.yaml", root: str | Path = ".") -> Any:
    """Run stage ``name`` with paths under ``root``; returns what the component's ``run`` returns."""
    from components import params as params_mod

    if name not in BY_NAME:
        raise KeyError(f"no stage {name!r}; stages: {list(BY_NAME)}")
    stage = BY_NAME[name]
    root = Path(root)
    params = params_mod.load(root / params_path if not Path(params_path).is_absolute() else params_path)
    sections = [getattr(params, s) for s in stage.params]
    paths = {k: root / p for k, p in {**stage.deps, **stage.outs, **stage.reports, **stage.metrics, **stage.plots}.items()}
    component = importlib.import_module(stage.component)
    if "root" in inspect.signature(component.run).parameters:  # a component resolving user paths (ingest.raw_dir)
        paths["root"] = root
    return component.run(*sections, **paths)
