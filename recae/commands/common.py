"""What the ``recae`` subcommands share: the data options, loading ``--data``, model names, ``--param``."""

from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path

import pandas as pd

from ..data import Interactions
from ..data.drops import dropped_counts
from ..data.frames import DUPLICATE_RULES
from ..datasets import registry
from ..datasets.files import load_log
from ..exceptions import RecaeError
from ..io import is_model_file
from ..models import MODEL_REGISTRY

#: Dataset names ``--data`` accepts (see :mod:`recae.datasets.registry`).
DATASETS = registry.DATASET_NAMES


def writable_paths(out: Path, report_dir: Path | None = None, data: str | None = None, model_file: bool = True,
                   flag: str = "--out") -> None:
    """Refuse, before the work, an output file (or report folder) that could not be written after
    it, one that would overwrite the ``--data`` log, or (``model_file``) any existing file but a model."""
    if data is not None and os.path.exists(data) and out.exists() and os.path.samefile(out, data):
        raise RecaeError(f"{flag} {str(out)!r} is the --data log itself; saving would replace the log with the "
                         f"{'model' if model_file else 'results'}")
    if out.is_dir():
        raise RecaeError(f"{flag} must be a file path such as {'best.recae' if model_file else 'results.csv'}; "
                         f"{str(out)!r} is a folder")
    if model_file and out.is_file() and out.stat().st_size and not is_model_file(out):  # an empty file is a placeholder
        raise RecaeError(f"{flag} {str(out)!r} exists and is not a recae model file; saving would replace it: "
                         "choose another path (or delete that file first)")
    reports = () if report_dir is None else ((report_dir, "--report-dir"),)
    for folder, what in ((out.parent, f"{flag}'s folder"), *reports):
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not existing.is_dir():
            raise RecaeError(f"{what} {str(folder)!r} cannot be made: {str(existing)!r} is a file")
        if not os.access(existing, os.W_OK):
            raise RecaeError(f"{what} {str(folder)!r} is not writable")


def _separator(text: str) -> str:
    """``--sep``'s value: "tab" (or a typed backslash-t) is a tab character."""
    return "\t" if text.lower() == "tab" or text == "\\t" else text


def model_names() -> list[str]:
    """Lower-case names of the model classes ``--model`` accepts."""
    return sorted(k.lower() for k in MODEL_REGISTRY)


def model_class(name: str):
    by_lower = {k.lower(): v for k, v in MODEL_REGISTRY.items()}
    if name.lower() not in by_lower:
        saved = name.endswith(".recae") or os.path.isfile(name)
        hint = ("; --model takes a model name, not a saved model file: recae evaluate --model FILE fits a "
                "file's settings on a split, and recae tune's report (<out>_tune.md) has the chosen setting, which "
                "--model <name> --param key=value fits again" if saved else "")
        raise RecaeError(f"unknown model {name!r}; choose from {sorted(by_lower)}{hint}")
    return by_lower[name.lower()]


def new_model(cls, params: dict):
    """An instance with ``params``; unknown names are refused with the valid ones listed."""
    return cls().set_params(**params)


def parse_params(pairs: list[str]) -> dict:
    """``--param NAME=VALUE`` pairs as a dict, values read as Python literals where they parse."""
    params = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise RecaeError(f"--param takes NAME=VALUE; got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key.isidentifier():
            raise RecaeError(f"--param takes NAME=VALUE with a parameter name; got {pair!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def warn(message: str) -> None:
    """A ``recae: warning: ...`` line on stderr (what the CLI did differently from what was asked)."""
    print(f"recae: warning: {message}", file=sys.stderr, flush=True)


def print_table(table: pd.DataFrame) -> None:
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def add_data_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """The ``data`` option group: ``--data`` and how a log is read and turned into positives."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", "--dataset", dest="data", required=required,
                   help=f"dataset name ({', '.join(DATASETS)}) or a CSV/TSV/Parquet path")
    g.add_argument("--data-dir", help="folder holding datasets (default: $RECAE_DATA_DIR, then ./datasets)")
    g.add_argument("--download", action="store_true", help="download a missing MovieLens dataset")
    g.add_argument("--user-col", default="user", help="user id column of a CSV/Parquet log (default: user)")
    g.add_argument("--item-col", default="item", help="item id column (default: item)")
    g.add_argument("--rating-col", help="rating column, if any")
    g.add_argument("--timestamp-col", help="timestamp column, if any")
    g.add_argument("--sep", type=_separator,
                   help="field separator of a text log: a character, or 'tab' (default: ',', or tab for .tsv)")
    g.add_argument("--encoding", help="text encoding of a CSV/TSV log (default utf-8), e.g. latin-1")
    g.add_argument("--duplicates", choices=DUPLICATE_RULES,
                   help="repeated (user, item) rows of a log file: last (default: the latest rating; 1.0 per pair "
                        "without ratings), sum (counts), first or raise")
    g.add_argument("--binarize", type=float, default=None,
                   help="ratings above this are positives (default 3.5; a log without --rating-col is used as it is)")
    g.add_argument("--min-user", type=int, default=5, help="drop users with fewer positives (default 5)")
    g.add_argument("--min-item", type=int, default=1, help="drop items with fewer positives (default 1)")
    g.add_argument("--seed-data", type=int, default=0, help=argparse.SUPPRESS)
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's thread pool for the command (:func:`recae.cli.main` applies it)."""
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; use 1 on a busy machine)")


def data_description(args) -> str:
    """How ``--data`` is named in reports: a dataset's description or the log file's path."""
    return registry.REGISTRY[args.data].description if args.data in registry.REGISTRY else str(Path(args.data))


def load_data(args) -> tuple[Interactions, str]:
    """Interactions for ``--data`` and a description of what was loaded (repeats merged, as the CLI says)."""
    if args.data not in registry.REGISTRY or args.data in registry.SYNTHETIC_NAMES:
        unused = [flag for flag, value in (("--data-dir", args.data_dir), ("--download", args.download)) if value]
        if unused:
            kind = "the generated dataset" if args.data in registry.REGISTRY else "the log file"
            warn(f"{' and '.join(unused)} ignored: {'it applies' if len(unused) == 1 else 'they apply'} to MovieLens "
                 f"datasets, not {kind} {args.data!r}")
    if args.duplicates is not None and args.data not in registry.REGISTRY:
        data = load_log(args.data, sep=args.sep, user=args.user_col, item=args.item_col, rating=args.rating_col,
                        timestamp=args.timestamp_col, duplicates=args.duplicates,
                        encoding=getattr(args, "encoding", None))
        what = data_description(args)
    else:
        if args.data in registry.REGISTRY:
            given = [flag for flag, value in (("--duplicates", args.duplicates), ("--rating-col", args.rating_col),
                                              ("--timestamp-col", args.timestamp_col), ("--sep", args.sep),
                                              ("--encoding", getattr(args, "encoding", None))) if value is not None]
            given += [flag for flag, value in (("--user-col", args.user_col), ("--item-col", args.item_col))
                      if value not in ("user", "item")]
            if given:
                warn(f"{', '.join(given)} ignored: {'it applies' if len(given) == 1 else 'they apply'} to log files, "
                     f"not the dataset {args.data!r}")
        data, what = registry.load(args.data, data_dir=args.data_dir, download=args.download,
                                   show_progress=not args.quiet, random_state=args.seed_data, sep=args.sep,
                                   user=args.user_col, item=args.item_col, rating=args.rating_col,
                                   timestamp=args.timestamp_col, encoding=getattr(args, "encoding", None))
    if data.merged_rows:
        rule = args.duplicates or "last"
        kind = ("1.0 per pair; --duplicates sum counts them" if not data.has_ratings and rule != "sum"
                else f"--duplicates {rule}")
        print(f"{what}: {data.merged_rows:,} repeated (user, item) rows merged into {data.nnz:,} entries ({kind})")
    return data, what


def implicit_positives(data: Interactions, args) -> Interactions:
    """``--binarize`` (ratings only) and the ``--min-user``/``--min-item`` filter, each saying what it dropped."""
    if data.has_ratings:
        threshold = 3.5 if args.binarize is None else args.binarize
        before = data.nnz
        data = data.binarize(threshold)
        print(f"--binarize {threshold:g}: {data.nnz:,} of {before:,} ratings are positives")
    elif args.binarize is not None:
        warn(f"--binarize {args.binarize:g} ignored: this log has no ratings "
             + ("(no --rating-col given), so every (user, item) pair is a positive already"
                if getattr(args, "rating_col", None) is None else "(its values are not ratings)"))
    done = len(data.drops)
    data = data.filter(min_user=args.min_user, min_item=args.min_item)
    for record in data.drops[done:]:
        flags = f"--min-user {args.min_user}" + (f" --min-item {args.min_item}" if args.min_item > 1 else "")
        print(f"{flags} dropped {dropped_counts(record.before, record.after)}")
    return data
