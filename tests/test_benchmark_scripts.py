"""Every benchmark script still imports: a refactor that moves a name breaks the scripts silently otherwise."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from unittest import mock

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_benchmark_script_imports(path, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])  # the scripts import _env and each other
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    try:
        with mock.patch.dict(os.environ):  # a script may set a thread count for its own process
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("recae", path.stem) or (BENCHMARKS / f"{exc.name}.py").exists():
            raise
        pytest.skip(f"optional package {exc.name} is not installed")
