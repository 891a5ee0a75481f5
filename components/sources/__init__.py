"""Source readers: each turns one raw format into ingest's canonical tables (``base``).

``reader(name)`` gives ``read(con, params, raw_dir) -> Source`` of ``ingest.source`` ``name``; a
reader's module is imported only when its source is chosen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

MODULES = {
    "synthetic": "logs",
    "files": "logs",
    "movielens": "movielens",
    "sequences": "sequences",
    "criteo": "criteo",
    "census": "census",
    "sessions": "sessions",
    "generic": "generic",
}


def reader(source: str) -> Callable:
    return importlib.import_module(f"components.sources.{MODULES[source]}").read
