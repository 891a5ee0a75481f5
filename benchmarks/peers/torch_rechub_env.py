"""The torch-rechub 0.9.0 virtual environment, kept apart from the project.

torch-rechub is never a dependency of this project: it is installed into
``benchmarks/.venv-torch-rechub`` (gitignored) and only ever run as a separate
process (``torch_rechub_runner.py`` under that venv's python).

Install order matters: ``torch==2.13.0`` first (the local CPU wheel; letting pip
resolve torch on its own pulls a newer release with gigabytes of CUDA packages),
then ``torch-rechub==0.9.0`` and ``pyarrow`` under a constraints file that pins
torch and, where the project's ``constraints.txt`` names them, the shared
scientific stack (numpy, pandas, scikit-learn, tqdm, pyarrow), so both libraries
run on the same versions. A stamp file written after a successful import check
marks the environment complete; without it (an interrupted install) the venv is
deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TORCH = "torch==2.13.0"
PEER = "torch-rechub==0.9.0"
EXTRA = ["pyarrow"]  # the runner reads Parquet; torch-rechub itself needs only numpy, pandas, scikit-learn, tqdm
SHARED = ("numpy", "pandas", "scikit-learn", "tqdm", "pyarrow")  # pinned to the project's versions when it pins them
VENV_NAME = ".venv-torch-rechub"
STAMP_NAME = ".installed.json"


def _log(message: str) -> None:
    print(f"[torch-rechub env] {message}", flush=True)


def _project_pins(root: Path) -> list[str]:
    """``name==version`` lines for the shared packages, taken from the project's constraints.txt if it has them."""
    path = root / "constraints.txt"
    if not path.exists():
        return []
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" not in line:
            continue
        name = line.split("==", 1)[0].strip().lower().replace("_", "-")
        if name in SHARED:
            pins.append(line)
    return pins


def venv_python(root: Path) -> Path:
    return root / "benchmarks" / VENV_NAME / "bin" / "python"


def _run(cmd: list[str], what: str) -> None:
    _log(f"{what}: {' '.join(cmd)}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]).strip()
        raise RuntimeError(f"torch-rechub environment: {what} failed (exit {proc.returncode}):\n{tail}")
    _log(f"{what}: done in {time.perf_counter() - start:.1f} s")


def ensure_env(root: Path) -> Path:
    """Create ``<root>/benchmarks/.venv-torch-rechub`` once and return its python executable.

    Idempotent: returns at once when the stamp matches the wanted packages. A venv
    without a (matching) stamp is removed and rebuilt. Raises RuntimeError if any
    step fails.
    """
    root = Path(root).resolve()
    venv = root / "benchmarks" / VENV_NAME
    python = venv_python(root)
    stamp = venv / STAMP_NAME
    pins = _project_pins(root)
    spec = {"torch": TORCH, "peer": PEER, "extra": EXTRA, "pins": pins}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    if stamp.exists() and python.exists():
        try:
            if json.loads(stamp.read_text()).get("digest") == digest:
                return python
        except (OSError, ValueError):
            pass
        _log("stamp does not match the wanted packages; rebuilding")
    if venv.exists():
        _log(f"removing incomplete environment {venv}")
        shutil.rmtree(venv)

    start = time.perf_counter()
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", str(venv)], "create venv")
    if not python.exists():
        raise RuntimeError(f"torch-rechub environment: {python} missing after venv creation")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    _run(pip + [TORCH], f"install {TORCH} (first, so no CUDA build is resolved)")
    constraints = venv / "constraints.txt"
    constraints.write_text("\n".join([TORCH, *pins]) + "\n")
    _run(pip + ["-c", str(constraints), PEER, *EXTRA], f"install {PEER} (+ {', '.join(EXTRA)}) under {constraints.name}")
    check = (
        "import torch, torch_rechub, pandas, numpy, pyarrow, sklearn, importlib.metadata as m;"
        "assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__;"
        "assert m.version('torch-rechub') == '0.9.0', m.version('torch-rechub');"
        "print('torch', torch.__version__, 'torch-rechub', m.version('torch-rechub'),"
        " 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'pyarrow', pyarrow.__version__)"
    )
    proc = subprocess.run([str(python), "-c", check], capture_output=True, text=True, env={**os.environ, "PYTHONNOUSERSITE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"torch-rechub environment: import check failed:\n{proc.stderr[-3000:]}")
    _log(proc.stdout.strip())
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.split()
    stamp.write_text(json.dumps({"digest": digest, "spec": spec, "freeze": freeze}, indent=2))
    _log(f"ready in {time.perf_counter() - start:.1f} s: {python}")
    return python


if __name__ == "__main__":
    print(ensure_env(Path(__file__).resolve().parents[2]))
