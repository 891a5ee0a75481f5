"""Daily retraining: every stage of ``pipelines.stages.STAGES`` as one Airflow task.

Each task calls ``pipelines.runner.run_stage`` -- the same code path ``dvc repro``
runs -- so a DAG run writes the same artefacts (data/, models/, metrics/, plots/,
bundle/) under ``root`` as ``dvc repro`` does in the project. The task graph is
built from ``pipelines.stages.upstream``, the graph ``dvc.yaml`` is rendered from.

Running it (with this package installed in Airflow's environment)::

    export AIRFLOW_HOME=~/airflow                      # holds airflow.cfg and the DB
    export AIRFLOW__CORE__DAGS_FOLDER=/path/to/rechub/dags
    airflow db migrate
    airflow dags test rechub_daily_retrain             # one in-process run, no scheduler
    airflow dags test rechub_daily_retrain -c '{"params_file": "params.yaml", "root": "/data/rechub"}'

DAG params (override per run with ``-c``/run conf): ``params_file`` (relative to
``root`` unless absolute) and ``root``, the project directory the stage paths are
under (default ``$RECHUB_ROOT``, else the parent of this ``dags/`` folder).

Retries: one retry after five minutes by default, for transient failures (a
killed worker, a full disk); stages are deterministic, so more would only repeat
an error. ``RECHUB_DAG_RETRIES=0`` turns them off (tests do): retries are fixed
when the file is parsed, so they cannot come from run params.

Parsing stays cheap: only ``pipelines.stages`` is imported here; components (and
torch, duckdb, faiss, great_expectations behind them) are imported inside tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import Param, dag, task

from pipelines.stages import STAGES, upstream

DEFAULT_ROOT = os.environ.get("RECHUB_ROOT", str(Path(__file__).resolve().parents[1]))


@task
def run_stage_task(stage: str, params: dict | None = None) -> None:
    """Run ``stage`` with this run's ``params_file`` and ``root`` (Airflow passes ``params``)."""
    from pipelines.runner import run_stage

    run_stage(stage, params_path=params["params_file"], root=params["root"])


@dag(
    dag_id="rechub_daily_retrain",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "rechub",
        "retries": int(os.environ.get("RECHUB_DAG_RETRIES", "1")),
        "retry_delay": timedelta(minutes=5),
    },
    params={
        "params_file": Param("params.yaml", type="string", description="params.yaml, relative to root"),
        "root": Param(DEFAULT_ROOT, type="string", description="project directory the stage paths are under"),
    },
    tags=["rechub"],
    doc_md=__doc__,
)
def rechub_daily_retrain():
    tasks = {s.name: run_stage_task.override(task_id=s.name)(s.name) for s in STAGES}
    for s in STAGES:
        for name in upstream(s):
            tasks[name] >> tasks[s.name]


rechub_daily_retrain()
