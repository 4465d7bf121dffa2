"""Facts recorded in every benchmark result file: command, machine, date, versions.

The same facts as in the files of `recae bench` (:func:`recae.bench.report.environment`),
with the script's command line.
"""

from __future__ import annotations

import os
import sys

from recae.bench import report


def environment() -> dict:
    return report.environment("python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]))


def header_markdown(env: dict) -> str:
    return "\n".join(report.environment_lines(env)) + "\n"
