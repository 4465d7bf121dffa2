"""The append-only journal of interactions a server received, so a restart loses none.

One SQLite file (WAL mode, ``synchronous=FULL``: a commit is on disk before it returns, so an
acknowledged append survives a kill or a power cut) holding one record per append: a JSON
payload and its CRC-32, checked on every read, so a damaged record is refused rather than
replayed wrong. Several server processes may share one journal: each reads the records past the
last one it has seen (``since``), which is also how an append in one worker reaches the others.
A small ``meta`` table holds the model generation, which ``POST /admin/reload`` bumps so every
worker swaps to the new model file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import zlib

from ..exceptions import RecaeError

logger = logging.getLogger(__name__)

__all__ = ["Journal", "JournalError"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: Identifies a recae journal: a foreign SQLite file is refused instead of written into.
KIND = "recae-journal/1"


class JournalError(RecaeError):
    """The journal file is unreadable, foreign or holds a damaged record."""


def _crc(payload: str) -> int:
    return zlib.crc32(payload.encode("utf-8"))


def record_ok(payload, crc) -> dict | None:
    """A stored record's JSON object, or None when it fails its checks (a damaged file can read back
    a NULL or a number where the text was)."""
    if not isinstance(payload, str) or not isinstance(crc, int) or _crc(payload) != crc:
        return None
    try:
        record = json.loads(payload)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


class Journal:
    """Append-only, checksummed records of interactions in a SQLite file.

    Parameters
    ----------
    path : str or os.PathLike
        Created if missing (its folder must exist).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            # one connection shared by the server's threads, serialised by the lock
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            kind = self._meta("kind")
            if kind is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('kind', ?)", (KIND,))
                kind = self._meta("kind")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path!r} is not a usable recae journal (SQLite: {exc})") from None
        if kind != KIND:
            raise JournalError(f"{self.path!r} is a SQLite file but not a recae journal (kind {kind!r}, "
                               f"expected {KIND!r})")

    def _meta(self, key: str):
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def append(self, record: dict) -> int:
        """Write one record durably; returns its sequence number (1, 2, ...)."""
        payload = json.dumps(record, sort_keys=True, allow_nan=False)
        with self._lock:
            try:
                cur = self._db.execute("INSERT INTO events (payload, crc) VALUES (?, ?)", (payload, _crc(payload)))
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"could not append to the journal {self.path!r}: {exc}") from None
            return int(cur.lastrowid)

    def since(self, seq: int) -> list[tuple[int, dict]]:
        """Records after ``seq``, oldest first, each checked against its CRC."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT seq, payload, crc FROM events WHERE seq > ? ORDER BY seq",
                                        (int(seq),)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"could not read the journal {self.path!r}: {exc}") from None
        out = []
        for s, payload, crc in rows:
            record = record_ok(payload, crc)
            if record is None:
                raise JournalError(f"journal {self.path!r}: record {s} fails its CRC-32 check (damaged); restore the "
                                   "file from a backup, or keep the records that pass their checks with recae serve "
                                   "--salvage-journal (the damaged file is kept beside it)")
            out.append((int(s), record))
        return out

    def version(self) -> int:
        """SQLite's ``data_version``: changes when another connection (process) commits."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def generation(self) -> tuple[int, str | None]:
        """(model generation, model file path) last recorded by a reload; (0, None) before any."""
        with self._lock:
            gen, path = self._meta("generation"), self._meta("model_path")
        return int(gen or 0), path

    def set_generation(self, generation: int, path: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(int(generation)),))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('model_path', ?)", (os.fspath(path),))
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
