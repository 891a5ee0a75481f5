"""Ingest a synthetic Criteo-format click log under a memory cap: wall time, peak RSS, peak scratch disk.

    python -m benchmarks.criteo_ingest --rows N [--memory-limit 1GB] [--min-count 10] [--scratch DIR] [--keep]

Writes N lines in the Criteo format (label, I1..I13, C1..C26; tab-separated, no header) into a
scratch directory, chunk by chunk with vectorised numpy (memory for one chunk, not for N rows),
then runs ``rechub ingest`` (``ingest.source: criteo``) on it in a scratch project, in its own
process, with ``ingest.memory_limit`` set, and prints the file size, the ingest's wall seconds, its
peak resident memory (``os.wait4``) and the peak size of the project's data directory while it ran
(DuckDB's database and spill files, plus the output).

The layout follows the real logs: each field empty at about the real rate (I12 at 77 %, C22 at
76 %, ...), I2 with small negatives, per-column cardinalities of the Kaggle data's order of
magnitude with Zipf-distributed values hashed to 8 hex digits, and a click rate of about 25 % that
depends on I1, C1 and C2, so the output is not noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

ROOT = Path(__file__).resolve().parents[1]

# share of empty fields per column, about the Kaggle train.txt's
EMPTY_INT = [0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.0005, 0.04, 0.45, 0.04, 0.77, 0.22]
EMPTY_CAT = [0, 0, 0.03, 0.03, 0, 0.12, 0, 0, 0, 0, 0, 0.03, 0, 0, 0, 0.03, 0, 0, 0.44, 0.44, 0.03, 0.76, 0, 0.03,
             0.44, 0.44]
# distinct values per categorical column (the Kaggle data's, capped: a column draws from at most this many)
CARDINALITY = [1460, 583, 10_131_227, 2_202_608, 305, 24, 12_517, 633, 3, 93_145, 5683, 8_351_593, 3194, 27, 14_992,
               5_461_306, 10, 5652, 2173, 4, 7_046_547, 18, 15, 286_181, 105, 142_572]
ZIPF = 1.15  # exponent of the value frequencies
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex8(values: np.ndarray) -> np.ndarray:
    """uint32 values as 8-hex-digit byte strings (``S8``), without a Python loop."""
    shifts = np.arange(28, -1, -4, dtype=np.uint32)
    digits = (values[:, None] >> shifts) & 0xF  # (n, 8)
    return np.ascontiguousarray(HEX[digits]).view("S8").ravel()


def chunk(rng: np.random.Generator, n: int, first_line: int) -> pa.Table:
    """``n`` rows of the 40 fields; empty fields are nulls (written as nothing)."""
    ints = rng.geometric(rng.uniform(0.01, 0.3, size=(13, 1)), size=(13, n)).astype(np.int64) - 1  # counts
    ints[1] = rng.integers(-3, 300, size=n)  # I2: small negatives
    ints[4] = rng.geometric(1e-4, size=n)  # I5: large counts
    codes = [(rng.zipf(ZIPF, size=n) - 1) % size for size in CARDINALITY]
    drift = first_line / 1e8  # a slow drift over the file, as in time-ordered logs
    logit = (-1.9 + 0.35 * np.log1p(np.maximum(ints[0], 0)) + np.where(codes[0] % 7 == 0, 1.2, -0.2)
             + np.where(codes[1] < 5, 0.6, 0.0) - drift)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    columns = {"label": pa.array(label)}
    for j in range(13):
        columns[f"I{j + 1}"] = pa.array(ints[j], mask=rng.random(n) < EMPTY_INT[j])
    for j, size in enumerate(CARDINALITY):
        hashes = (codes[j].astype(np.uint64) * 2654435761 + (j + 1) * 0x9E3779B9) % 2**32  # a bijection: value → hash
        strings = pa.array(hex8(hashes.astype(np.uint32)), type=pa.binary(), mask=rng.random(n) < EMPTY_CAT[j])
        columns[f"C{j + 1}"] = strings.cast(pa.string())
    return pa.table(columns)


def write_log(path: Path, rows: int, chunk_rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with path.open("wb") as sink:
        for start in range(0, rows, chunk_rows):
            pacsv.write_csv(chunk(rng, min(chunk_rows, rows - start), start), sink, options)


def directory_bytes(path: Path) -> int:
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(base, name)).st_size
            except FileNotFoundError:  # a spill file removed while walking
                pass
    return total


def run_ingest(project: Path) -> tuple[float, int, int, int]:
    """``rechub ingest`` in ``project``: (wall seconds, peak RSS bytes, peak data-dir bytes, exit code)."""
    peak_disk = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak_disk[0] = max(peak_disk[0], directory_bytes(project / "data"))

    watcher = threading.Thread(target=watch, daemon=True)
    log = (project / "ingest.log").open("w")
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ingest", "--root", str(project)],
                             cwd=ROOT, stdout=log, stderr=log)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)  # the ingest process's own peak RSS
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    log.close()
    return seconds, usage.ru_maxrss * 1024, peak_disk[0], os.waitstatus_to_exitcode(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--memory-limit", default="1GB", help="ingest.memory_limit (DuckDB's cap)")
    parser.add_argument("--min-count", type=int, default=10, help="ingest.criteo.min_count (AutoInt: 10)")
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", help="directory for the file and the project (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="criteo-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        raw = scratch / "raw"
        raw.mkdir(exist_ok=True)
        log = raw / "train.txt"
        start = time.perf_counter()
        write_log(log, args.rows, args.chunk_rows, args.seed)
        written = time.perf_counter() - start
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["ingest"].update(source="criteo", raw_dir=str(raw), memory_limit=args.memory_limit,
                                criteo={"file": log.name, "min_count": args.min_count})
        project = scratch / "project"
        project.mkdir(exist_ok=True)
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        seconds, rss, disk, code = run_ingest(project)
        print(f"rows            {args.rows:>12,}")
        print(f"file            {log.stat().st_size / 2**20:>12,.1f} MiB  (written in {written:.1f} s)")
        print(f"memory_limit    {args.memory_limit:>12}")
        if code != 0:
            print((project / "ingest.log").read_text(), file=sys.stderr)
            print(f"ingest failed (exit {code}) after {seconds:.1f} s", file=sys.stderr)
            return 1
        out = project / "data" / "processed"
        print(f"ingest wall     {seconds:>12,.1f} s  ({args.rows / seconds:,.0f} rows/s)")
        print(f"peak RSS        {rss / 2**20:>12,.0f} MiB")
        print(f"peak data dir   {disk / 2**20:>12,.0f} MiB  (database, spill files and output)")
        print(f"output          {directory_bytes(out) / 2**20:>12,.1f} MiB  "
              f"{', '.join(p.stem for p in sorted(out.glob('ranking_*.parquet')))}")
        return 0
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
