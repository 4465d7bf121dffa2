"""Facts recorded in every benchmark result file: command, machine, date, versions.

The same facts as in the files of `recae bench` (:func:`recae.bench.report.environment`),
with the script's command line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from recae.bench import report


def environment() -> dict:
    return report.environment("python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]))


def header_markdown(env: dict) -> str:
    return "\n".join(report.environment_lines(env)) + "\n"


def write_results(out, text: str, env: dict, rows: list) -> None:
    """The Markdown report at ``out`` and its rows (with ``env``) as JSON beside it."""
    Path(out).write_text(text)
    Path(out).with_suffix(".json").write_text(json.dumps({"env": env, "rows": rows}, indent=1) + "\n")


def publish(out, text: str, env: dict, rows: list) -> int:
    """Print the report and, with ``out``, write it and its rows (:func:`write_results`); 0 for the exit code."""
    print(text)
    if out:
        write_results(out, text, env, rows)
    return 0
