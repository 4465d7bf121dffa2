"""How ``recae serve`` runs uvicorn: settings travel in one environment variable.

uvicorn starts ``--workers N`` processes from an import string, so each worker builds its app
with :func:`app_from_env` from the JSON in ``RECAE_SERVE_SETTINGS`` (the admin token stays in
its own variable, never in the settings). Every worker shares the journal, which carries
appended interactions and reloads between them.
"""

from __future__ import annotations

import json
import os
import sys

from ..exceptions import RecaeError

__all__ = ["SETTINGS_ENV", "app_from_env", "run"]

SETTINGS_ENV = "RECAE_SERVE_SETTINGS"


def app_from_env():
    """The app a uvicorn worker serves (uvicorn calls this factory once per worker)."""
    from .web import create_app

    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RecaeError(f"${SETTINGS_ENV} is not set; start the server with `recae serve MODEL_FILE`")
    s = json.loads(raw)
    if s.get("threads"):
        import torch

        torch.set_num_threads(int(s["threads"]))  # this process is the server: its pool is ours to size
    return create_app(s["model"], journal=s.get("journal"), max_body_bytes=s.get("max_body_bytes", 1 << 20),
                      device=s.get("device"), sighup=s.get("sighup", False), explain_n=s.get("explain_n", 5))


def run(model: str, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, journal: str | None = None,
        device: str | None = None, max_body_bytes: int = 1 << 20, explain_n: int = 5, log_level: str = "warning",
        access_log: bool = False, threads: int | None = None) -> None:
    """Serve ``model`` with uvicorn until interrupted (SIGINT/SIGTERM stop it, SIGHUP reloads).

    One worker runs in this process. Several replace this process (same pid, so signals still
    reach the server) with a bare ``python -c`` that starts uvicorn: uvicorn spawns each worker
    by re-importing the main module, and a main module that imports torch and the models
    answers uvicorn's first health check too late on a busy machine, which then kills it.
    """
    # one worker: SIGHUP is ours (reload in place); several: uvicorn's parent process swaps the
    # workers one by one, each new worker loading the file, and keeps an old one if a new one fails
    os.environ[SETTINGS_ENV] = json.dumps({"model": os.path.abspath(model), "journal": journal, "device": device,
                                           "max_body_bytes": max_body_bytes, "explain_n": explain_n,
                                           "sighup": workers == 1, "threads": threads})
    options = {"host": host, "port": port, "workers": workers, "log_level": log_level, "access_log": access_log,
               "timeout_graceful_shutdown": 30, "timeout_worker_healthcheck": 300}
    if workers == 1:
        import uvicorn

        uvicorn.run(APP, factory=True, **options)
        return
    os.environ[OPTIONS_ENV] = json.dumps(options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-c", LAUNCH])


APP = "recae.serve.server:app_from_env"
OPTIONS_ENV = "RECAE_SERVE_UVICORN"
#: The whole main module of a multi-worker server: nothing heavy to re-import in each worker.
LAUNCH = (f"import json, os, uvicorn; uvicorn.run({APP!r}, factory=True, **json.loads(os.environ[{OPTIONS_ENV!r}]))")
