"""Artefact I/O: atomic writes (temp then rename) and checked reads."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from components.errors import DataError, ValidationFailed


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temp directory; on success it replaces directory ``path`` whole.

    Directories cannot be swapped in one rename: the old one is moved aside,
    the new one moved in, then the old one removed; if the second move fails
    the old one is put back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    tmp.chmod(0o755)
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:  # put the previous artefact back
                os.replace(old, path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def require_validated(report: Path) -> None:
    """Stop unless the validation report says the processed data passed."""
    if not read_json(report).get("success", False):
        raise ValidationFailed(f"{report}: the processed data failed validation; fix it and rerun validate")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the stage that writes it first") from None


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a Parquet file; a missing file or column raises ``DataError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: missing; run the stage that writes it first")
    if columns is not None:
        present = set(pq.read_schema(path).names)
        absent = [c for c in columns if c not in present]
        if absent:
            raise DataError(f"{path}: missing column(s) {absent}")
    return pq.read_table(path, columns=list(columns) if columns is not None else None)
