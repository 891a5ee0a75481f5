"""Train the ranking (CTR) model and its logistic-regression baseline on one binary label (``train_ranker.label``).

Both see the same features, data and early stopping on the time-ordered
validation split; the baseline has its own optimizer settings
(``baseline_train``), so it is compared converged, not under-trained. Writes ``model_dir`` (the ranker, and the
baseline under ``baseline/``) and per-epoch figures to ``plot``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from components import skip
from components.artifacts import load_schema, save_model
from components.errors import DataError
from components.fit import fit_registered, ranking_tables
from components.io import atomic_dir, require_validated, write_json
from components.params import TrainRankerParams, section_dict
from rechub_core.models.ranking.linear import LogisticRegressionConfig



def run(params: TrainRankerParams, *, processed: Path, report: Path, model_dir: Path, plot: Path) -> dict:
    require_validated(report)
    if (why := skip.reason(processed, "ranking")) is not None:
        return skip.record("train_ranker", why, model_dir, plots=(plot,))
    labels = load_schema(processed).labels
    if params.label not in labels:
        raise DataError(f"train_ranker.label: {params.label!r} is not a binary label of the data; it has {list(labels)}")
    schema, train, valid = ranking_tables(processed, params.model.groups)
    # the trained label first: a model reading a label itself (SIM's soft-search auxiliary task) reads the first
    if schema.labels[0] != params.label:  # (then no longer in funnel order)
        schema = replace(schema, labels=(params.label, *(x for x in labels if x != params.label)), funnel=False)
    model, history = fit_registered(
        "ranking",
        params.model,
        schema,
        train,
        valid,
        [params.label],
        params.train,
        params.early_stopping,
        seed=params.seed,
        desc="train_ranker",
    )
    baseline_config = LogisticRegressionConfig(groups=list(params.model.groups))
    baseline, baseline_history = fit_registered(
        "ranking",
        baseline_config,
        schema,
        train,
        valid,
        [params.label],
        params.baseline_train,
        params.early_stopping,
        seed=params.seed,
        desc="train_ranker baseline",
    )
    with atomic_dir(model_dir) as out:
        save_model(out, "ranking", model, params.model, schema, label=params.label, history=history)
        (out / "baseline").mkdir()
        save_model(out / "baseline", "ranking", baseline, baseline_config, schema, label=params.label, history=baseline_history)
        write_json(out / "params.json", section_dict(params))
    write_json(plot, history)
    return {"history": history, "baseline_history": baseline_history}
