"""Importing DAG files: each as a fresh module, with the snapshot's plugins importable."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from spinner.sdk.dag import DAG
from spinner.sdk.parse_state import dag_parsing


def dag_import_path(snapshot_root: Path) -> list[str]:
    """What DAG files need on sys.path: the root (`import plugins.x`) and plugins/ (`import x`)."""
    return [str(snapshot_root / "plugins"), str(snapshot_root)]


@contextmanager
def extra_sys_path(paths: Sequence[str]) -> Iterator[None]:
    added = [p for p in paths if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)


def load_dags_from_file(path: Path, *, module_prefix: str = "spinner_dag_") -> list[DAG]:
    """Executes the file and returns the DAGs it defines, validated. Errors propagate as raised."""
    if not path.is_relative_to("/proc/self/fd"):  # a DAG user's view of its folder (spinner/sandbox.py) stays one
        path = path.resolve()
    name = f"{module_prefix}{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with dag_parsing():  # task-time APIs (Variable.get, get_connection) refuse to work here
            spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    found: dict[str, DAG] = {}
    for value in list(vars(module).values()):
        if isinstance(value, DAG):
            found.setdefault(value.dag_id, value)
            if found[value.dag_id] is not value:
                raise ValueError(f"DAG id '{value.dag_id}' is defined twice in {path.name}")
    for dag in found.values():
        dag.fileloc = str(path)
        dag.validate()
    return list(found.values())
