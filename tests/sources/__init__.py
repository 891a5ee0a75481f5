"""Writers of tiny raw files in each public format ingest reads (written by the tests; no real data is committed).

Each module has ``write(raw_dir: Path) -> dict``: it writes a tiny data set in its format into ``raw_dir``
and returns the ``ingest`` params overrides that read it (``source``, ``raw_dir`` and the source's section);
``project`` makes a project of tiny params that reads them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.runner import run_stage
from tests.conftest import merge, tiny_params_dict


def project(root: Path, overrides: dict, *, run: bool = False, **ingest) -> Path:
    """``root/params.yaml``: the tiny params, ingest reading what a writer's ``overrides`` name, with more
    ``ingest`` keys (a partial source section updates the writer's); ingested if ``run``. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    params = tiny_params_dict(ingest=merge(overrides, ingest))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if run:
        run_stage("ingest", root=root)
    return root
