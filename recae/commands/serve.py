"""``recae serve``: answer recommendation requests over HTTP (FastAPI + uvicorn)."""

from __future__ import annotations

import os
import socket

from ..exceptions import RecaeError
from ..serve import INSTALL, load_model, require_fastapi
from .common import add_threads_arg


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over HTTP: recommendations, explanations, live history",
                       description="Serve a recae model file over HTTP (JSON). Open http://HOST:PORT/ for the "
                                   "explorer and /docs for the API. Appended interactions go to a journal next to "
                                   "the model file and are replayed on restart; SIGHUP or POST /admin/reload "
                                   f"swaps in a new model file. Needs {INSTALL}.")
    p.add_argument("model_file", metavar="MODEL_FILE", help="a file written by recae fit or model.save")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1); they share the journal")
    p.add_argument("--journal", help="journal of appended interactions (default: MODEL_FILE.journal)")
    p.add_argument("--no-journal", action="store_true", help="keep appended interactions in memory only")
    p.add_argument("--salvage-journal", action="store_true",
                   help="first rewrite a damaged journal with the records that pass their checks (the damaged "
                        "file is kept as JOURNAL.damaged-TIME)")
    p.add_argument("--admin-token", help="token for /admin/* (default: $RECAE_ADMIN_TOKEN; none: admin off)")
    p.add_argument("--device", help="device to load the model on (default: the one it was saved with)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies answer 413 (1 MiB)")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.add_argument("--access-log", action="store_true", help="log every request")
    add_threads_arg(p)  # per worker; requests run in a thread pool, so 1 often serves best on few cores
    p.set_defaults(func=cmd_serve)


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line, an address this machine cannot listen on (uvicorn would log and exit 3)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RecaeError(f"--host {host!r} is not an address of this machine ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise RecaeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port "
                             "(or stop what holds it)") from None


def cmd_serve(args) -> int:
    require_fastapi()
    if args.workers < 1:
        raise RecaeError(f"--workers must be a positive integer; got {args.workers}")
    if not 0 <= args.port <= 65535:
        raise RecaeError(f"--port must be between 0 and 65535; got {args.port}")
    if args.max_body_bytes < 1:
        raise RecaeError(f"--max-body-bytes must be a positive integer; got {args.max_body_bytes}")
    if args.no_journal and args.journal:
        raise RecaeError("--journal and --no-journal contradict each other; pass one")
    if args.no_journal and args.workers > 1:
        raise RecaeError("--workers > 1 needs the journal (it carries appended interactions between workers)")
    model, _ = load_model(args.model_file, args.device)  # refuse a bad file before binding the port
    check_listen(args.host, args.port)
    journal = None if args.no_journal else os.path.abspath(args.journal or f"{args.model_file}.journal")
    if args.salvage_journal and journal is None:
        raise RecaeError("--salvage-journal rewrites the journal; it contradicts --no-journal")
    if args.salvage_journal:
        from ..serve.salvage import salvage

        done = salvage(journal)
        print(f"recae: journal salvaged: {done['kept']} record(s) kept; damaged: {done['damaged'] or 'none'}"
              + (f"; unreadable after record {done['unreadable_after']}" if done["unreadable_after"] is not None
                 else "") + f"; the damaged file is {done['moved_to']}", flush=True)
    if journal is not None:
        from ..serve.journal import Journal
        from ..serve.salvage import finish

        moved = finish(journal)  # a salvage a kill interrupted: its rebuilt journal takes the name now
        if moved:
            print(f"recae: finished an interrupted journal salvage; the damaged file is {moved}", flush=True)
        j = Journal(journal)  # a file that is not a journal, or a damaged record, is refused before "serving"
        try:
            records = j.since(0)
        finally:
            j.close()
        clicks = sum(r.get("ratings") is None for _, r in records)
        if clicks and model.accepts_negative:  # journalled by a model of positives: each would read as a 1-star rating
            raise RecaeError(f"{journal} holds {clicks} append(s) without ratings, journalled for a model of positives; "
                             f"{type(model).__name__} reads ratings and would take each as a 1-star one: serve it with "
                             "a new --journal")
    if args.admin_token:
        os.environ["RECAE_ADMIN_TOKEN"] = args.admin_token  # for the worker processes; never printed
    print(f"recae: serving {type(model).__name__} from {args.model_file} on http://{args.host}:{args.port}/ "
          f"({args.workers} worker{'s' if args.workers > 1 else ''}; journal: {journal or 'off'}; "
          f"admin: {'on' if args.admin_token or os.environ.get('RECAE_ADMIN_TOKEN') else 'off'}); Ctrl+C stops",
          flush=True)
    del model
    from ..serve.server import run

    run(args.model_file, host=args.host, port=args.port, workers=args.workers, journal=journal,
        device=args.device, max_body_bytes=args.max_body_bytes, log_level=args.log_level, access_log=args.access_log,
        threads=args.threads)
    return 0
