"""``recae fit``: fit a model on a log and save it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.splits import validation_split
from ..checkpoint import CHECKPOINT
from ..exceptions import RecaeError
from ..models import EASE, MODEL_REGISTRY, SparseEASE
from ..models.auto import auto_linear
from ..models.explicit import ExplicitRecommender
from .common import (add_data_args, add_threads_arg, implicit_positives, load_data, model_class, model_names, new_model,
                     parse_params, warn, writable_paths)

FIT_EPILOG = """examples:
  recae fit --data ml-1m --model ease --out ease.recae
  recae fit --data ml-100k --model ease --param l2=200 --param dtype=float64 --out ease.recae
  recae fit --data ratings.csv --user-col userId --item-col movieId --rating-col rating --out m.recae
  recae fit --data clicks.csv --timestamp-col time --model ease --out m.recae     repeats: 1.0 per (user, item)
  recae fit --data ml-1m --model multvae --valid 0.1 --patience 5 --checkpoint-dir ckpt --out vae.recae
  recae fit --data ml-1m --model multvae --valid 0.1 --checkpoint-dir ckpt --resume --out vae.recae
  recae fit --data ml-1m --model autorec --explicit --out autorec.recae

Ratings above --binarize become positives and users with fewer than --min-user positives are
dropped, unless --explicit keeps the log as it is (the rating models, AutoRec and BiasedMF,
need it). A log without --rating-col is used as it is: one positive per (user, item) pair.
--valid holds out that fraction of users (fold-in 80% / target 20%) for the neural models'
early stopping; Ctrl-C with --checkpoint-dir leaves a checkpoint that --resume continues.
"""


def add_parser(sub) -> None:
    f = sub.add_parser("fit", help="fit a model on a log and save it", epilog=FIT_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(f)
    f.add_argument("--model", default="ease", help=f"model class (default ease); one of {model_names()}, or auto: "
                   "EASE where its items² matrices fit the memory budget, else SparseEASE")
    f.add_argument("--param", action="append", metavar="NAME=VALUE", help="hyper-parameter, repeatable (e.g. --param l2=200)")
    f.add_argument("--explicit", action="store_true", help="keep ratings as they are (no binarize/filter)")
    g = f.add_argument_group("training (neural and rating models)")
    g.add_argument("--valid", type=float, metavar="FRACTION",
                   help="hold out this fraction of users (e.g. 0.1) to validate on: early stopping, best epoch")
    g.add_argument("--patience", type=int, help="stop after this many epochs without a better validation score")
    g.add_argument("--checkpoint-dir", metavar="DIR", help="write a checkpoint after every epoch")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    add_threads_arg(f)
    f.add_argument("--out", required=True, help="model file to write (safetensors + JSON metadata)")
    f.set_defaults(func=cmd_fit)


def training_options(model, args) -> dict:
    """``fit`` keyword arguments from --checkpoint-dir/--resume; refused for models that do not train in epochs."""
    asked = {"--checkpoint-dir": args.checkpoint_dir is not None, "--resume": args.resume,
             "--patience": args.patience is not None}
    trained = "checkpoint_dir" in model.fit_options
    if not trained and any(asked.values()):
        epoch_models = [name for name, cls in sorted(MODEL_REGISTRY.items()) if "checkpoint_dir" in cls.fit_options]
        raise RecaeError(f"{', '.join(k for k, v in asked.items() if v)} applies to models trained in epochs "
                         f"({', '.join(n.lower() for n in epoch_models)}), not {type(model).__name__}")
    if args.resume and args.checkpoint_dir is None:
        raise RecaeError("--resume continues from a checkpoint: give --checkpoint-dir DIR as well")
    if args.checkpoint_dir is not None:
        held = (Path(args.checkpoint_dir) / CHECKPOINT).exists()
        if held and not args.resume:  # a fresh start would overwrite it after its first epoch
            raise RecaeError(f"--checkpoint-dir {args.checkpoint_dir!r} holds a checkpoint: add --resume to continue "
                             "it, or give another folder (or delete it) to start over")
        if args.resume and not held:
            warn(f"--resume: no checkpoint in {args.checkpoint_dir!r} yet; training starts at epoch 1")
    if args.patience is not None:
        if args.patience < 1:
            raise RecaeError(f"--patience must be a positive integer (epochs without a better score); got {args.patience}")
        if args.valid is None:
            warn(f"--patience {args.patience} ignored: early stopping needs validation users (--valid FRACTION); "
                 "the model trains all its epochs")
        model.set_params(patience=args.patience)
    return {"checkpoint_dir": args.checkpoint_dir, "resume": True} if args.resume else \
        ({"checkpoint_dir": args.checkpoint_dir} if args.checkpoint_dir is not None else {})


def _number(value) -> str:
    """A setting as the auto notice shows it: numbers to three digits, anything else as given."""
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def cmd_fit(args) -> int:
    writable_paths(Path(args.out), data=args.data)  # before the fit, not after it
    data, chosen = None, {}
    if args.model.lower() == "auto":  # the choice needs the catalogue's size: load first
        data, what = load_data(args)
        if not args.explicit:
            data = implicit_positives(data, args)
        mine = parse_params(args.param)
        budget = mine.get("memory_budget_gb", 8.0)
        cls, chosen = auto_linear(data.n_items, budget, mine.get("dtype", "float32"))
        fits, but = ("fits" if cls is EASE else "does not fit"), ""
        sparse_only = sorted(k for k in mine if k in SparseEASE().get_params() and k not in EASE().get_params())
        if cls is EASE and sparse_only:  # a setting only SparseEASE takes asks for it
            cls, chosen = SparseEASE, {k: mine[k] for k in sparse_only}
            but = f", but --param {sparse_only[0]} is SparseEASE's"
        args.model = cls.__name__.lower()
        shown = {k: mine.get(k, v) for k, v in chosen.items()}  # a --param of the user's wins over auto's choice
        print(f"--model auto: {args.model}{''.join(f' {k}={_number(v)}' for k, v in shown.items())} for "
              f"{data.n_items:,} items (dense EASE {fits} memory_budget_gb={budget:g}{but})")
    cls = model_class(args.model)
    rating_model = issubclass(cls, ExplicitRecommender)
    if rating_model and not args.explicit:
        raise RecaeError(f"{cls.__name__} trains on explicit ratings: add --explicit to keep them as they are "
                         "(and --rating-col COLUMN for a log file)")
    params = {**chosen, **parse_params(args.param)}  # a --param of the user's wins over auto's choice
    model = new_model(cls, params)
    if "show_progress" in model.get_params() and "show_progress" not in params:
        # None: the bar shows on a terminal only, so `2>log` gets no carriage-return frames
        model.set_params(show_progress=False if args.quiet else None)
    options = training_options(model, args)
    if data is None:
        data, what = load_data(args)
        if not args.explicit:
            data = implicit_positives(data, args)
    if args.explicit and not data.has_ratings and rating_model:
        raise RecaeError(f"{cls.__name__} trains on explicit ratings, but this log has none: give --rating-col "
                         "COLUMN (the column holding the ratings)")
    valid = None
    if args.valid is not None:
        if "checkpoint_dir" not in model.fit_options:
            warn(f"--valid ignored: {cls.__name__} does not validate while fitting; all users are used")
        else:
            data, valid = validation_split(data, args.valid, random_state=98765)
            print(f"--valid {args.valid:g}: {valid[0].n_users:,} users held out for validation, "
                  f"{data.n_users:,} left for training")
    epochs: list = []  # the finished epochs' logs, to say where an interrupted fit stopped

    def record(owner, epoch, logs) -> bool:
        epochs.append(logs)
        return False  # never asks to stop

    if "callbacks" in model.fit_options:
        options["callbacks"] = [record]
    try:
        model.fit(data, valid=valid, **options)
    except KeyboardInterrupt:
        done = f" after epoch {epochs[-1]['epoch']}" if epochs else ""
        # a resumed fit's checkpoint is there before this run ends an epoch
        if args.checkpoint_dir is not None and (epochs or (Path(args.checkpoint_dir) / CHECKPOINT).exists()):
            print(f"recae: interrupted{done}; nothing saved to {args.out}. The checkpoint in {args.checkpoint_dir} "
                  "continues it: run the same command with --resume", file=sys.stderr)
        elif args.checkpoint_dir is not None:
            print("recae: interrupted before the first epoch ended; nothing saved, no checkpoint yet", file=sys.stderr)
        else:
            print(f"recae: interrupted{done}; nothing saved"
                  + ("" if "checkpoint_dir" not in model.fit_options
                     else " (with --checkpoint-dir DIR an interrupted fit can be continued with --resume)"),
                  file=sys.stderr)
        return 130
    if valid is not None:  # recommend names them when asked for one of these users
        model.quality_ = {**(getattr(model, "quality_", None) or {}),
                          "fitted_on": f"recae fit --valid {args.valid:g}: {valid[0].n_users} users held out for "
                                       "validation are not in the model"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # as recae tune does; writable_paths checked it
    model.save(args.out)
    trained = ""
    if getattr(model, "history_", None):
        trained = f"; {len(model.history_)} epochs, best epoch {model.best_epoch_}"
    print(f"fitted {model!r} on {what}: {data.n_users} users × {data.n_items} items{trained}; saved to {args.out}")
    return 0
