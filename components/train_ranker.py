"""Train the ranking (CTR) model and its logistic-regression baseline on clicks.

Both see the same features, data and early stopping on the time-ordered
validation split; the baseline has its own optimizer settings
(``baseline_train``), so it is compared converged, not under-trained. Writes ``model_dir`` (the ranker, and the
baseline under ``baseline/``) and per-epoch figures to ``plot``.
"""

from __future__ import annotations

from pathlib import Path

from components.artifacts import save_model
from components.fit import fit_registered, ranking_tables
from components.io import atomic_dir, require_validated, write_json
from components.params import TrainRankerParams, section_dict
from rechub_core.models.ranking.linear import LogisticRegressionConfig

LABEL = "click"


def run(params: TrainRankerParams, *, processed: Path, report: Path, model_dir: Path, plot: Path) -> dict:
    require_validated(report)
    schema, train, valid = ranking_tables(processed, params.model.groups)
    model, history = fit_registered(
        "ranking",
        params.model,
        schema,
        train,
        valid,
        [LABEL],
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
        [LABEL],
        params.baseline_train,
        params.early_stopping,
        seed=params.seed,
        desc="train_ranker baseline",
    )
    with atomic_dir(model_dir) as out:
        save_model(out, "ranking", model, params.model, schema, label=LABEL, history=history)
        (out / "baseline").mkdir()
        save_model(out / "baseline", "ranking", baseline, baseline_config, schema, label=LABEL, history=baseline_history)
        write_json(out / "params.json", section_dict(params))
    write_json(plot, history)
    return {"history": history, "baseline_history": baseline_history}
