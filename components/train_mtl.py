"""Train the multi-task model on the tasks named in params (label columns of the impressions).

A task is binary if its column is one of the schema's ``labels`` (trained with
BCE-with-logits) and a regression task if it is one of its ``values`` (squared
error); ``balancing`` combines the task losses. A model of a funnel
(ESMM, AITM: ``funnel = True``) needs binary tasks in the schema's funnel order.
"""

from __future__ import annotations

from pathlib import Path

from components import skip
from components.artifacts import save_model
from components.errors import DataError
from components.fit import fit_registered, ranking_tables
from components.io import atomic_dir, require_validated, write_json
from components.params import TrainMTLParams, section_dict
from rechub_core.data.tables import TensorTable
from rechub_core.features import Schema
from rechub_core.models.registry import entry


def task_kinds(params: TrainMTLParams, schema: Schema) -> tuple[str, ...]:
    """The regression tasks among ``params.tasks``; fails naming a task the data has no column for."""
    unknown = [t for t in params.tasks if t not in (*schema.labels, *schema.values)]
    if unknown:
        raise DataError(
            f"train_mtl.tasks: {unknown} not among the impressions' labels; binary: {list(schema.labels)}, "
            f"real-valued: {list(schema.values)}"
        )
    regression = tuple(t for t in params.tasks if t in schema.values)
    if getattr(entry("multi_task", params.model.name).model, "funnel", False):
        if not schema.funnel:
            raise DataError(
                f"train_mtl.model: {params.model.name!r} models a funnel (each task happens only after the one "
                f"before it); this data's labels {list(schema.labels)} are not one"
            )
        order = [schema.labels.index(t) for t in params.tasks if t in schema.labels]
        if regression or order != sorted(order):
            raise DataError(
                f"train_mtl.tasks: model {params.model.name!r} models a funnel: its tasks must be binary labels in "
                f"funnel order {list(schema.labels)}, got {params.tasks}"
            )
    return regression


def task_scale(train: TensorTable, tasks: list[str], regression: tuple[str, ...]) -> dict[str, list[float]] | None:
    """Each regression task's training mean and standard deviation (binary tasks: 0 and 1), for ``TaskScale``;
    None without regression tasks."""
    if not regression:
        return None
    values = {t: train[t].double() for t in regression}
    shift = [float(values[t].mean()) if t in values else 0.0 for t in tasks]
    scale = [max(float(values[t].std(correction=0)), 1e-6) if t in values else 1.0 for t in tasks]
    return {"shift": shift, "scale": scale}


def run(params: TrainMTLParams, *, processed: Path, report: Path, model_dir: Path, plot: Path) -> dict:
    require_validated(report)
    if (why := skip.reason(processed, "multi_task")) is not None:
        return skip.record("train_mtl", why, model_dir, plots=(plot,))
    schema, train, valid = ranking_tables(processed, params.model.groups)
    tasks = list(params.tasks)
    regression = task_kinds(params, schema)
    scale = task_scale(train, tasks, regression)
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
        regression=regression,
        balancing=params.balancing,
        task_scale=scale,
        num_tasks=len(tasks),
    )
    with atomic_dir(model_dir) as out:
        save_model(out, "multi_task", model, params.model, schema, tasks=tasks, regression=list(regression),
                   task_scale=scale, history=history)
        write_json(out / "params.json", section_dict(params))
    write_json(plot, history)
    return {"history": history}
