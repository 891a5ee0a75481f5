"""Train the multi-task model on the tasks named in params (label columns of the impressions)."""

from __future__ import annotations

from pathlib import Path

from components.artifacts import save_model
from components.fit import fit_registered, ranking_tables
from components.io import atomic_dir, require_validated, write_json
from components.params import TrainMTLParams, section_dict


def run(params: TrainMTLParams, *, processed: Path, report: Path, model_dir: Path, plot: Path) -> dict:
    require_validated(report)
    schema, train, valid = ranking_tables(processed, params.model.groups)
    tasks = list(params.tasks)
    model, history = fit_registered(
        "multi_task",
        params.model,
        schema,
        train,
        valid,
        tasks,
        params.train,
        params.early_stopping,
        seed=params.seed,
        desc="train_mtl",
        num_tasks=len(tasks),
    )
    with atomic_dir(model_dir) as out:
        save_model(out, "multi_task", model, params.model, schema, tasks=tasks, history=history)
        write_json(out / "params.json", section_dict(params))
    write_json(plot, history)
    return {"history": history}
