"""The README's quick start is what CI runs: the test command in ``.ci/run`` is the README's, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_install_then_run():
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert all(c.startswith("pip install torch==2.13.0 -e ") for c in commands), commands
    assert commands[1].endswith("python -m pytest -q"), commands


def test_ci_runs_the_readme_test_command_in_a_clean_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = quick_start_commands()[1]
    lines = [line.strip() for line in ci.splitlines()]
    assert test_command in lines, f"{test_command!r} is not a line of .ci/run"
    assert "python3 -m venv" in ci and "system-site-packages" not in ci


def test_test_extra_holds_what_the_tests_import():
    # the list ends at a "]" that closes its line: "uvicorn[standard]" holds one inside
    test_extra = re.search(r'^test = \[(.*?)\]$', (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    names = set(re.findall(r'"([A-Za-z0-9_.-]+)', test_extra))
    for package in ("pytest", "hypothesis", "pyarrow", "implicit", "threadpoolctl", "matplotlib", "fastapi",
                    "uvicorn", "httpx", "optuna"):
        assert package in names, f"{package} is missing from the test extra"
