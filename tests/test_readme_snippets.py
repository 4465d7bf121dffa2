"""Every Python snippet of README.md runs verbatim on this (CPU-only) machine, in order.

The runner is ``benchmarks/readme_snippets.py`` (the same script records the snippets' times
for the README); this test runs it on MovieLens 100K and MNIST and reads back what each
snippet did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_snippets.py"


def _data_dir() -> Path | None:
    d = os.environ.get("RECAE_DATA_DIR")
    return Path(d) if d else None


@pytest.mark.slow
def test_every_readme_python_snippet_runs_verbatim(tmp_path):
    data = _data_dir()
    if data is None or not (data / "ml-100k" / "u.data").exists() or not (data / "mnist").exists():
        pytest.skip("needs MovieLens 100K and MNIST under $RECAE_DATA_DIR (CI sets it to ../shared/data)")
    out = tmp_path / "snippets.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=3000)
    results = json.loads(out.read_text()) if out.exists() else []
    failed = [r for r in results if not r["ok"]]
    assert not failed, f"README snippet at README.md:{failed[0]['line']} failed:\n{failed[0]['error']}"
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    readme = (ROOT / "README.md").read_text()
    assert len(results) == readme.count("```python") >= 5  # each snippet ran, none was skipped
