"""The ``recae`` command line: demo, fit, recommend, evaluate, bench, image.

Talks only to the public API. This module builds the parser and runs a subcommand; each
subcommand lives in :mod:`recae.commands` (``recae image`` in :mod:`recae.image.cli`). The
command modules are the one place in recae that prints.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import warnings

from .commands import bench, demo, evaluate, fit, recommend, serve, tune
from .commands.bench import cmd_bench
from .commands.common import DATASETS, load_data
from .commands.demo import cmd_demo
from .commands.evaluate import cmd_evaluate
from .commands.fit import cmd_fit
from .commands.recommend import cmd_recommend
from .commands.syntax import cli_syntax
from .exceptions import ConversionWarning, DataWarning, RecaeError
from .image.cli import add_image_parser
from .version import __version__

__all__ = ["main", "build_parser", "load_data", "DATASETS", "cmd_demo", "cmd_fit", "cmd_recommend", "cmd_evaluate",
           "cmd_bench"]

EPILOG = """examples:
  recae demo                                   fit EASE on ML-100K (or a synthetic log) and compare with popularity
  recae fit --data ml-1m --model ease --out ease.recae
  recae fit --data ratings.csv --user-col userId --item-col movieId --rating-col rating --out m.recae
  recae fit --data clicks.csv --timestamp-col time --out m.recae      a click log: 1.0 per (user, item) pair
  recae fit --data ml-1m --model multvae --valid 0.1 --checkpoint-dir ckpt --out vae.recae
  recae recommend --model-file ease.recae --user 42 -n 10
  recae recommend --model-file ease.recae --user 1,2,999 --skip-unknown
  recae recommend --model-file ease.recae --history 1,50,181 -n 5
  recae serve ease.recae --port 8000          JSON API, explorer at http://127.0.0.1:8000/, docs at /docs
  recae evaluate --data ml-1m --model ease --protocol strong --seeds 98765 1 2
  recae bench --dataset ml-100k                 every model vs implicit ALS/BPR, tuned alike, tables + plot
  recae image fit --data mnist --arch conv --latent-dim 32 --out conv.recae

Data: --data takes a dataset name (ml-100k, ml-1m, ..., synthetic) looked up in --data-dir,
then $RECAE_DATA_DIR, then ./datasets; or a path to a .csv/.tsv/.parquet log.
"""


class Parser(argparse.ArgumentParser):
    """argparse with whole option names only (``--data`` is not ``--data-dir``) and one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"recae: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="recae", description="Collaborative-filtering autoencoders: fit, recommend, evaluate.",
               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"recae {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (demo, fit, recommend, evaluate, bench, tune, serve):
        command.add_parser(sub)
    add_image_parser(sub)
    p.commands = dict(sub.choices)  # subcommand name → its parser, for errors found after parsing
    return p


def _show_warning(command, message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning as one ``recae: warning: ...`` line: recae's in CLI syntax, others naming their source.

    Python's own format takes two lines (the second quoting source code the user never wrote);
    a third-party warning keeps its category and package so it can still be looked up.
    """
    if issubclass(category, (DataWarning, ConversionWarning)) or f"{os.sep}recae{os.sep}" in str(filename):
        print(f"recae: warning: {cli_syntax(str(message), command)}", file=sys.stderr, flush=True)
    else:
        text = " ".join(str(message).split())
        print(f"recae: warning: {text} ({category.__name__} from {_package(str(filename))})", file=sys.stderr,
              flush=True)


def _package(filename: str) -> str:
    """The top-level package a source file belongs to (``site-packages/elsa/elsa.py`` → ``elsa``)."""
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].removesuffix(".py")
    return os.path.basename(filename).removesuffix(".py") or "python"


def _set_threads(args) -> None:
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise RecaeError(f"--threads must be a positive integer; got {threads}")
        import torch  # already loaded with the models; set here so every subcommand gets it

        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if any(x in ("-v", "--verbose") for x in extra):  # also after the command name: recae fit ... -v
        args.verbose, extra = True, [x for x in extra if x not in ("-v", "--verbose")]
    if extra:  # named against the subcommand's usage, not the top-level one
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    args.raw_argv = list(sys.argv[2:] if argv is None else argv[1:])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with warnings.catch_warnings(), _terminate_as_exit():
        warnings.showwarning = functools.partial(_show_warning, args.command)
        return _run(args)


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM (kill's, systemd's and Kubernetes' default) as SystemExit(143) while a command runs:
    Python's default ends at once, skipping the cleanup that removes a save's temporary file."""
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    command = args.command
    try:
        _set_threads(args)
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (e.g. `recae demo | head`): stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RecaeError, OSError) as exc:
        # OSError: unreadable or unwritable files and folders (permissions, a full disk, ...)
        print(f"recae: error: {cli_syntax(_message(exc), command)}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"recae: error: an optional dependency is missing: {_message(exc)} "
              "(e.g. pip install 'recae[parquet]' for Parquet files)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recae: interrupted", file=sys.stderr)
        return 130


def _message(exc: BaseException) -> str:
    """The message (multi-line ones, like the dataset-not-found help, keep their layout)."""
    return str(exc).strip() or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
