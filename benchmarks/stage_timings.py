"""Time every pipeline stage and record its peak memory.

    python benchmarks/stage_timings.py [--params params.yaml] [--quick] [--out benchmarks/results/stages.json]

Runs the stages in order, each in its own process (``rechub <stage>``) in a
scratch project directory, and prints a table of wall seconds and peak RSS.
``--quick`` uses a small generated data set (seconds, for a smoke check).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.stages import STAGES  # noqa: E402

QUICK = {"n_users": 500, "n_items": 300, "n_clusters": 8, "min_events": 6, "max_events": 40, "impressions_per_user": 20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke check")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stages.json"))
    args = parser.parse_args()

    params = yaml.safe_load(Path(args.params).read_text())
    if args.quick:
        params["ingest"]["synthetic"].update(QUICK)
        params["ingest"]["history_len"] = 10
    rechub = shutil.which("rechub") or str(Path(sys.executable).parent / "rechub")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        log = project / "stage.log"
        for stage in STAGES:
            start = time.perf_counter()
            with log.open("w") as sink:
                child = subprocess.Popen([rechub, stage.name, "--root", str(project)], stdout=sink, stderr=sink)
                _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
            seconds = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                print(log.read_text(), file=sys.stderr)
                return 1
            peak_mb = usage.ru_maxrss / 1024
            rows.append({"stage": stage.name, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb)})
            print(f"{stage.name:<16} {seconds:8.2f} s   peak RSS {peak_mb:8.0f} MB", flush=True)
        metrics = {p.stem: json.loads(p.read_text()) for p in sorted((project / "metrics").glob("*.json"))}
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<16} {total:8.2f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "stages": rows, "total_seconds": total, "metrics": metrics}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
