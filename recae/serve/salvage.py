"""Keep what a damaged journal still holds: ``recae serve --salvage-journal``.

A kill cannot damage the journal (SQLite commits whole transactions), but a disk or a copy
can. Then a record fails its checksum, or SQLite cannot read on, and the server refuses to
start. Salvage copies every record that passes its checks, in order, into a fresh journal,
with the model generation, and keeps the damaged file (and its WAL) beside it for a look.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import time

from ..atomic import atomic_write_text
from .journal import Journal, JournalError, record_ok

logger = logging.getLogger(__name__)

__all__ = ["salvage", "finish"]


def _readable(db, report: dict) -> list[tuple[int, dict]]:
    """The records SQLite can still read and whose checksum and JSON hold, oldest first."""
    out, last = [], 0
    try:
        for seq, payload, crc in db.execute("SELECT seq, payload, crc FROM events ORDER BY seq"):
            last = seq
            record = record_ok(payload, crc)
            if record is None:
                report["damaged"].append(seq)
            else:
                out.append((seq, record))
    except sqlite3.DatabaseError as exc:  # a damaged page: what lies past it cannot be read
        report["unreadable_after"] = last
        report["error"] = str(exc)
    return out


#: Beside the journal while a salvage swaps files: it names where the damaged files go.
MARKER = ".salvaging"


def _keep(src: str, dst: str) -> None:
    """``src`` also named ``dst`` (a hard link; a copy renamed into place where links fail)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst + ".tmp")
        os.replace(dst + ".tmp", dst)


def finish(path) -> str | None:
    """Complete the swap of a salvage that a kill interrupted; what it moved the damaged file to,
    or None when no salvage was under way. Each step can be run again: the damaged journal (and
    its WAL, which holds committed records) keeps its name until the rebuilt one replaces it."""
    path = os.fspath(path)
    try:
        with open(path + MARKER, encoding="utf-8") as f:
            moved_to = f.read().strip()
    except FileNotFoundError:
        return None
    fresh = f"{path}.salvaged"
    if os.path.exists(fresh):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix) and not os.path.exists(moved_to + suffix):
                _keep(path + suffix, moved_to + suffix)
        for suffix in ("-wal", "-shm"):  # the damaged WAL must never meet the rebuilt file
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
        os.replace(fresh, path)
    os.remove(path + MARKER)
    return moved_to


def salvage(path) -> dict:
    """Rewrite the journal at ``path`` with the records that pass their checks.

    Parameters
    ----------
    path : str or os.PathLike
        An existing journal (``recae serve``'s ``--journal``).

    Returns
    -------
    dict
        ``kept`` (records copied), ``damaged`` (sequence numbers left out), ``unreadable_after``
        (the last sequence number read before SQLite failed, or None), ``moved_to`` (the damaged
        file; None when the journal passed every check and was left as it is).

    Raises
    ------
    JournalError
        When ``path`` is missing or no SQLite file at all.
    """
    path = os.fspath(path)
    finish(path)  # an earlier salvage that a kill interrupted
    if not os.path.isfile(path):
        raise JournalError(f"no journal at {path!r} to salvage")
    report = {"kept": 0, "damaged": [], "unreadable_after": None, "moved_to": None}
    try:
        intact = Journal(path)
        try:
            report["kept"] = len(intact.since(0))
            return report  # nothing to salvage: the file stays as it is
        finally:
            intact.close()
    except JournalError:
        pass
    meta = {}
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            records = _readable(db, report)
            with contextlib.suppress(sqlite3.DatabaseError):
                meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'model_path')"))
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path!r} cannot be read as SQLite at all ({exc}); restore it from a backup") from None
    fresh = f"{path}.salvaged"
    for leftover in (fresh, fresh + "-wal", fresh + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    out = Journal(fresh)
    for _, record in records:
        out.append(record)
    if meta.get("generation") and meta.get("model_path"):
        out.set_generation(int(meta["generation"]), meta["model_path"])
    out.close()
    with contextlib.closing(sqlite3.connect(fresh)) as db:  # one file, no WAL: it moves in one rename
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    report["kept"] = len(records)
    report["moved_to"] = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    atomic_write_text(path + MARKER, report["moved_to"])  # from here on, finish() completes it after a kill
    finish(path)
    logger.warning("journal %s salvaged: %d record(s) kept, damaged %s, unreadable after %s; the damaged file is %s",
                   path, report["kept"], report["damaged"] or "none", report["unreadable_after"], report["moved_to"])
    return report
