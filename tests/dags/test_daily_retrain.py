"""The daily retraining DAG: parses cleanly, mirrors the stage graph, runs end to end.

Airflow reads its configuration when it is imported and then takes over the
process's logging (root handler at INFO, its own ``warnings.showwarning``), so
every Airflow step here runs in a subprocess under a throwaway ``AIRFLOW_HOME``
and reports back as JSON. The pytest process never imports airflow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.stages import STAGES, edges

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_FILE = DAGS / "daily_retrain.py"
DAG_ID = "rechub_daily_retrain"
HEAVY = ("torch", "duckdb", "great_expectations", "faiss", "components")


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """Environment for Airflow subprocesses: a fresh AIRFLOW_HOME (SQLite DB inside), this repo's dags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "RECHUB_ROOT"}
    env.update(
        AIRFLOW_HOME=str(tmp_path_factory.mktemp("airflow_home")),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",  # task errors still show; ~100 INFO lines per run do not
        # airflow's in-process execution API imports fastapi's TestClient, which warns about httpx
        PYTHONWARNINGS="ignore:Using `httpx` with `starlette.testclient`",
        RECHUB_DAG_RETRIES="0",  # a failing task fails the run now instead of waiting for a retry
        DVC_NO_ANALYTICS="1",
    )
    return env


def run_python(code: str, env: dict[str, str], tmp_path: Path, timeout: float = 120) -> dict:
    """Run ``code`` in a fresh interpreter; it writes its result as JSON to the path in ``OUT``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**env, "OUT": str(out)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(proc.stdout, end="")  # Airflow's log (warnings and errors): pytest shows it when a test fails
    print(proc.stderr, end="", file=sys.stderr)
    assert proc.returncode == 0 and out.exists(), f"exit status {proc.returncode}; its output is below"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def parsed(airflow_env, tmp_path_factory) -> dict:
    """The dags folder as Airflow's DagBag parses it, summarised."""
    code = f"""
        import json, os
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder={str(DAGS)!r})
        dag = bag.dags.get({DAG_ID!r})
        summary = {{"errors": bag.import_errors, "warnings": bag.captured_warnings, "dag_ids": bag.dag_ids}}
        if dag is not None:
            summary.update(
                upstream={{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}},
                schedule=[str(dag.schedule), dag.timetable.expression],
                catchup=dag.catchup,
                max_active_runs=dag.max_active_runs,
                params=dict(dag.params),
                retries=sorted({{t.retries for t in dag.tasks}}),
            )
        json.dump(summary, open(os.environ["OUT"], "w"), default=str)
    """
    return run_python(code, airflow_env, tmp_path_factory.mktemp("parse"))


def test_dagbag_has_no_import_errors(parsed):
    assert parsed["errors"] == {}
    assert parsed["warnings"] == {}
    assert DAG_ID in parsed["dag_ids"]


def test_task_graph_is_the_stage_graph(parsed):
    upstream = parsed["upstream"]
    assert set(upstream) == {s.name for s in STAGES}
    assert {(u, task) for task, ups in upstream.items() for u in ups} == edges()


def test_dag_settings(parsed):
    assert parsed["schedule"] == ["@daily", "0 0 * * *"]
    assert parsed["catchup"] is False
    assert parsed["max_active_runs"] == 1
    assert parsed["params"] == {"params_file": "params.yaml", "root": str(ROOT)}
    assert parsed["retries"] == [0]  # RECHUB_DAG_RETRIES=0 in airflow_env


def test_parsing_imports_nothing_heavy(airflow_env, tmp_path):
    code = f"""
        import importlib.util, json, os, sys

        spec = importlib.util.spec_from_file_location("daily_retrain", {str(DAG_FILE)!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        imported = {{m.split(".")[0] for m in sys.modules}}
        json.dump(sorted(imported & set({HEAVY!r})), open(os.environ["OUT"], "w"))
    """
    assert run_python(code, airflow_env, tmp_path) == []


@pytest.mark.slow
def test_dag_run_writes_the_pipeline_artefacts(airflow_env, tiny_params_file, tmp_path):
    root = tiny_params_file.parent
    code = f"""
        import json, os
        from airflow.dag_processing.dagbag import DagBag
        from airflow.utils import db

        db.upgradedb()  # what `airflow db migrate` runs
        dag = DagBag(dag_folder={str(DAGS)!r}).dags[{DAG_ID!r}]
        run = dag.test(run_conf={{"params_file": {tiny_params_file.name!r}, "root": {str(root)!r}}})
        states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
        json.dump({{"state": str(run.state), "tasks": states}}, open(os.environ["OUT"], "w"))
    """
    result = run_python(code, airflow_env, tmp_path / "airflow_run", timeout=600)
    assert result["tasks"] == {s.name: "success" for s in STAGES}
    assert result["state"] == "success"
    for artefact in ("data/processed", "metrics/recall.json", "bundle/manifest.json"):
        assert (root / artefact).exists(), artefact
