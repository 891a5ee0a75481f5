"""The retraining pipeline as data: stages, their params, inputs and outputs.

This module is the single definition that ``dvc.yaml`` (rendered by
``python -m pipelines.render``) and the Airflow DAG are built from. It imports
nothing heavy, so a DAG file can import it at parse time.

Paths are relative to the project root. A stage's ``deps``/``outs`` map the
keyword its component's ``run()`` takes to a path; a stage depends on every
stage that produces one of its dep paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROCESSED = "data/processed"
VALIDATION_REPORT = "reports/validation.json"
SAMPLES = "data/samples"
RECALL_MODEL = "models/recall"
INDEX = "models/index"
RANKER_MODEL = "models/ranker"
MTL_MODEL = "models/mtl"
BUNDLE = "bundle"
# code every stage runs: params, artefact I/O, errors, the feature schema
COMMON_CODE = (
    "components/params.py",
    "components/io.py",
    "components/errors.py",
    "components/artifacts.py",
    "components/skip.py",  # what a stage does when the data has nothing for it
    "rechub_core/features.py",
    "rechub_core/data/behaviors.py",  # ranking rows' behaviour columns, cut when loaded
    "rechub_core/data/tables.py",
)
# code that builds, trains or runs models
MODEL_CODE = (
    "rechub_core/models",
    "rechub_core/layers",
    "rechub_core/training",
    "rechub_core/data/sampling.py",  # the streaming frequency estimate
    "rechub_core/data/sequences.py",
    "rechub_core/metrics.py",  # validation AUC for early stopping
)


@dataclass(frozen=True)
class Stage:
    name: str
    params: tuple[str, ...]  # params.yaml sections the component receives
    deps: dict[str, str] = field(default_factory=dict)  # run() keyword -> path made upstream
    outs: dict[str, str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)  # small outputs kept in the workspace, not the cache
    metrics: dict[str, str] = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict)
    code: tuple[str, ...] = ()  # code beyond components/<name>.py and COMMON_CODE
    watch: tuple[str, ...] = ()  # other paths DVC reruns the stage for (e.g. your raw data), not passed to run()

    @property
    def component(self) -> str:
        return f"components.{self.name}"

    @property
    def produces(self) -> set[str]:
        return {*self.outs.values(), *self.reports.values(), *self.metrics.values(), *self.plots.values()}


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        params=("ingest",),
        outs={"processed": PROCESSED},
        code=("components/sources", "rechub_core/data/synthetic.py"),
        watch=(),  # with ingest.source: files, list your raw data directory here, e.g. ("data/external",)
    ),
    Stage(
        "validate",
        params=(),
        deps={"processed": PROCESSED},
        reports={"report": VALIDATION_REPORT},
    ),
    Stage(
        "negative_sample",
        params=("negative_sample",),
        deps={"processed": PROCESSED, "report": VALIDATION_REPORT},
        outs={"samples": SAMPLES},
        code=("rechub_core/data/sampling.py",),
    ),
    Stage(
        "train_recall",
        params=("train_recall",),
        deps={"processed": PROCESSED, "samples": SAMPLES},
        outs={"model_dir": RECALL_MODEL},
        plots={"plot": "plots/train_recall.json"},
        code=("rechub_core/data/augment.py", *MODEL_CODE),
    ),
    Stage(
        "build_index",
        params=("build_index",),
        deps={"recall_model": RECALL_MODEL},
        outs={"index_dir": INDEX},
        metrics={"metrics": "metrics/index.json"},
        code=("rechub_core/index.py",),
    ),
    Stage(
        "train_ranker",
        params=("train_ranker",),
        deps={"processed": PROCESSED, "report": VALIDATION_REPORT},
        outs={"model_dir": RANKER_MODEL},
        plots={"plot": "plots/train_ranker.json"},
        code=("components/fit.py", *MODEL_CODE),
    ),
    Stage(
        "train_mtl",
        params=("train_mtl",),
        deps={"processed": PROCESSED, "report": VALIDATION_REPORT},
        outs={"model_dir": MTL_MODEL},
        plots={"plot": "plots/train_mtl.json"},
        code=("components/fit.py", *MODEL_CODE),
    ),
    Stage(
        "evaluate",
        params=("evaluate",),
        deps={
            "processed": PROCESSED,
            "recall_model": RECALL_MODEL,
            "index_dir": INDEX,
            "ranker_model": RANKER_MODEL,
            "mtl_model": MTL_MODEL,
        },
        metrics={"recall": "metrics/recall.json", "ranking": "metrics/ranking.json", "mtl": "metrics/mtl.json"},
        code=("rechub_core/scoring.py", "rechub_core/retrieval.py", "rechub_core/index.py", *MODEL_CODE),
    ),
    Stage(
        "export",
        params=("export",),
        deps={
            "processed": PROCESSED,
            "recall_model": RECALL_MODEL,
            "index_dir": INDEX,
            "ranker_model": RANKER_MODEL,
            "mtl_model": MTL_MODEL,
            "index_metrics": "metrics/index.json",
            "recall_metrics": "metrics/recall.json",
            "ranking_metrics": "metrics/ranking.json",
            "mtl_metrics": "metrics/mtl.json",
        },
        outs={"bundle": BUNDLE},
        metrics={"metrics": "metrics/export.json"},
        code=("rechub_core/export.py", *MODEL_CODE),
    ),
)

BY_NAME = {s.name: s for s in STAGES}


def upstream(stage: Stage) -> list[str]:
    """Names of the stages that produce one of ``stage``'s deps, in pipeline order."""
    needed = set(stage.deps.values())
    return [s.name for s in STAGES if s.name != stage.name and s.produces & needed]


def edges() -> set[tuple[str, str]]:
    """(upstream, downstream) pairs of the stage graph."""
    return {(u, s.name) for s in STAGES for u in upstream(s)}
