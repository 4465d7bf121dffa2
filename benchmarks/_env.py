"""Facts recorded in every benchmark result file: command, machine, date, versions."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys


def environment() -> dict:
    import numpy
    import pandas
    import scipy
    import torch

    import recae

    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} cores, GPU: {gpu}",
        "versions": {"python": platform.python_version(), "recae": recae.__version__, "torch": torch.__version__,
                     "numpy": numpy.__version__, "scipy": scipy.__version__, "pandas": pandas.__version__},
    }


def header_markdown(env: dict) -> str:
    v = ", ".join(f"{k} {x}" for k, x in env["versions"].items())
    return (f"- command: `{env['command']}`\n- date: {env['date']}\n- machine: {env['machine']}\n"
            f"- versions: {v}\n")
