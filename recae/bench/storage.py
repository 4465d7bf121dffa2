"""Where a search's Optuna studies live: in memory, or in an SQLite file that a later run resumes.

A stored study records a fingerprint of the data, the search space and the settings; a run
with other data or settings is refused with the reason, so one file never mixes two searches.
A trial left running by a killed process is marked failed and its setting queued again, so
resuming loses no trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from pathlib import Path

import numpy as np

from ..exceptions import DataError

logger = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Tables every Optuna RDB storage has; a database without them belongs to something else.
OPTUNA_TABLES = {"studies", "trials", "version_info"}


def _plain(value):
    """``value`` as it reads back from a study's JSON attributes."""
    return json.loads(json.dumps(value, default=str))


def fingerprint(split, grid: dict, settings: dict) -> str:
    """Hash of the split's matrices, one model's grid and the search settings."""
    h = hashlib.sha256(json.dumps({"grid": grid, "settings": settings}, sort_keys=True, default=str).encode())
    parts = [split.train] + [getattr(split, a) for a in ("valid_fold_in", "valid_target", "valid")
                             if getattr(split, a, None) is not None]
    for part in parts:
        m = part.matrix
        h.update(np.asarray(m.shape, np.int64).tobytes())
        h.update(np.ascontiguousarray(m.indptr, np.int64).tobytes())
        h.update(np.ascontiguousarray(m.indices, np.int64).tobytes())
    return h.hexdigest()[:16]


def describe(split) -> str:
    """The split's kind and training part in words, to tell a user which of two splits is which."""
    train = split.train.matrix
    return (f"{type(split).__name__} with {train.shape[0]} training users × {train.shape[1]} items, "
            f"{train.nnz} positives")


def storage_url(path) -> str:
    """``sqlite:///...`` for a file path, refusing an existing file that is not an SQLite database."""
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"storage must be a file path (str or os.PathLike) such as 'tune.db'; got {path!r}")
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise DataError(f"storage must be a file path such as tune.db; {str(path)!r} is a directory")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise DataError(f"{str(path)!r} is not an SQLite database (Optuna storage); "
                                "pass a new file path, e.g. --storage tune.db")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                tables = sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        except sqlite3.DatabaseError as exc:  # e.g. a copy cut short: "database disk image is malformed"
            raise DataError(f"{str(path)!r} is a damaged SQLite database ({exc}); restore it from a backup, "
                            "or pass a new file path to start afresh") from None
        if tables and not OPTUNA_TABLES <= set(tables):  # another application's database: never add tables to it
            raise DataError(f"{str(path)!r} is an SQLite database of something else (tables {tables[:5]}), not an "
                            "Optuna storage; pass a new file path, e.g. --storage tune.db")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot make the folder of storage {str(path)!r}: {exc.strerror or exc}") from None
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise DataError(f"storage {str(path)!r} is not writable{'' if path.exists() else ' (nor its folder)'}: "
                        "the search records every trial there; pass a path you can write")
    return f"sqlite:///{path}"


def open_studies(storage, study_name: str, models, split, grids: dict, settings: dict, first: dict) -> dict:
    """One Optuna study per model, named ``<study_name>/<model>``: created, or resumed from ``storage``.

    Raises
    ------
    DataError
        When ``storage`` holds studies of another search (another name, other data or settings).
    """
    import optuna  # lazy: the `tune` extra

    where = None
    if storage is None:
        store = optuna.storages.InMemoryStorage()
    else:
        where = str(storage)
        try:
            store = optuna.storages.RDBStorage(storage_url(storage))
            names = [s.study_name for s in store.get_all_studies()]
        except DataError:
            raise
        except Exception as exc:  # sqlalchemy's errors for a damaged or foreign database
            raise DataError(f"{where!r} is not an Optuna storage this version can read ({exc}); "
                            "pass a new file path") from None
        ours = [n for n in names if n.startswith(study_name + "/")]
        searches = sorted({n.split("/")[0] for n in names if "/" in n})  # recae names a study <search>/<model>
        if names and not ours and not searches:
            raise DataError(f"{where!r} holds Optuna studies {sorted(names)[:5]} that no recae search wrote (recae "
                            "names its studies '<study_name>/<model>'); pass a new storage file")
        if names and not ours:
            raise DataError(f"{where!r} holds the studies {searches} of another search, not {study_name!r}; pass "
                            "the study_name of one of them to resume it, or a new storage file to start this one")
    try:
        return _studies(optuna, store, where, study_name, models, split, grids, settings, first)
    except DataError:
        raise
    except (optuna.exceptions.StorageInternalError, sqlite3.Error, _sql_error()) as exc:
        # e.g. a file that became read-only: Optuna wraps SQLite's error in its own
        raise DataError(f"could not record the search in {where!r} ({_root(exc)}); pass a storage file you "
                        "can write") from None


def _sql_error() -> type:
    from sqlalchemy.exc import SQLAlchemyError  # Optuna's RDB storage is built on it

    return SQLAlchemyError


def _root(exc: BaseException) -> str:
    """The innermost cause's message (SQLite's own words, not the wrappers' pages of SQL)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _studies(optuna, store, where, study_name, models, split, grids, settings, first) -> dict:
    studies = {}
    for name in models:
        fp = fingerprint(split, grids[name], settings)
        study = optuna.create_study(storage=store, study_name=f"{study_name}/{name}", direction="maximize",
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=3),
                                    load_if_exists=True)
        old = study.user_attrs.get("fingerprint")
        if old is None:
            study.set_user_attr("fingerprint", fp)
            study.set_user_attr("data", fingerprint(split, {}, {}))
            study.set_user_attr("split", describe(split))
            study.set_user_attr("grid", _plain(grids[name]))
            study.set_user_attr("settings", _plain(settings))
        elif old != fp:
            raise DataError(f"{where!r} holds a study {study_name}/{name} of another search: "
                            f"{_differences(study.user_attrs, split, grids[name], settings)}; pass a new storage "
                            "file, or another study_name, to start afresh, or run the stored search's command again")
        _requeue(study, name, first[name])
        studies[name] = study
    return studies


def _differences(stored: dict, split, grid: dict, settings: dict) -> str:
    """What differs between a stored study and this search, as far as its attributes tell."""
    out = []
    if "data" in stored and stored["data"] != fingerprint(split, {}, {}):
        now = describe(split)
        seen = f": stored {stored['split']}, now {now}" if stored.get("split") not in (None, now) else ""
        out.append(f"other data (the split's users, items or positives differ{seen})")
    if "grid" in stored and stored["grid"] != _plain(grid):
        out.append(f"another search space (stored {stored['grid']}, now {_plain(grid)})")
    old, now = stored.get("settings") or {}, _plain(settings)
    for key in sorted(set(old) | set(now)):
        a, b = old.get(key), now.get(key)
        if key == "fixed" and isinstance(a, dict) and isinstance(b, dict):  # keyed by the models searched
            if sorted(a) != sorted(b):
                out.append(f"other models searched (stored {sorted(a)}, now {sorted(b)})")
                continue
            changed = [m for m in a if a[m] != b[m]]
            a, b = {m: a[m] for m in changed}, {m: b[m] for m in changed}
        if a != b:
            out.append(f"{key} stored {a}, now {b}")
    if not out:  # a study from before the attributes were kept, or a split of the same shape
        out.append(f"other data, search space or settings (fingerprint {stored.get('fingerprint')})")
    return "; ".join(out)


def _requeue(study, name: str, first: dict) -> None:
    """Queue the first setting of a new study; re-queue trials a killed process left running."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if not trials:
        study.enqueue_trial(first)
        return
    for t in trials:
        if t.state == TrialState.RUNNING:
            logger.info("%s: trial %d was cut short by a stopped process; running it again", name, t.number)
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params)
