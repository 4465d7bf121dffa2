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
import sqlite3
import time

from .journal import Journal, JournalError, record_ok

logger = logging.getLogger(__name__)

__all__ = ["salvage"]


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
    report["kept"] = len(records)
    report["moved_to"] = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    for suffix in ("", "-wal", "-shm"):  # the WAL holds committed records too: it moves with its file
        if os.path.exists(path + suffix):
            os.replace(path + suffix, report["moved_to"] + suffix)
    for suffix in ("-wal", "-shm", ""):  # the main file last: until then the damaged one is still named
        if os.path.exists(fresh + suffix):
            os.replace(fresh + suffix, path + suffix)
    logger.warning("journal %s salvaged: %d record(s) kept, damaged %s, unreadable after %s; the damaged file is %s",
                   path, report["kept"], report["damaged"] or "none", report["unreadable_after"], report["moved_to"])
    return report
