"""WAL checkpoints of a SQLite store in a thread of their own, off the path that commits checks.

SQLite runs a checkpoint (copy the WAL's pages into the database file, then fsync it) inside
whichever commit fills the WAL past 1,000 pages, so every few dozen checks one check waited for
it. A store that commits on the event loop turns that off on its connections
(`PRAGMA wal_autocheckpoint = 0`) and runs this thread instead: a passive checkpoint every
`every_s`, which releases the GIL for its whole length, so it runs on another core while the
loop goes on deciding; and restarts a WAL that grew long (`checkpoint`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

_log = logging.getLogger("freshguard.store")

#: Seconds between checkpoints: at a thousand checks a second, the WAL holds a few MiB between two.
CHECKPOINT_EVERY_S = 0.5
#: A WAL longer than this (pages) is restarted at the next checkpoint, and cut back to JOURNAL_SIZE_LIMIT.
RESTART_PAGES = 16_384
#: The WAL file's size (bytes) once restarted: without it, the file keeps its longest size forever.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def checkpoint(connection: Any) -> None:
    """A passive checkpoint on `connection` (a sqlite3 connection whose busy timeout is 0); when the WAL has grown
    past RESTART_PAGES, a restart too, so that the next writer starts it over and cuts it back.

    A passive checkpoint copies what it can and never waits, but never starts the WAL over: under writes
    that never pause (a prune beside a busy service) the WAL grew by gigabytes while every frame in it had
    long been copied. A restart waits for no one either (busy timeout 0): if a writer holds the lock,
    it is tried again at the next checkpoint.
    """
    _busy, pages, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if pages > RESTART_PAGES:
        connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """A connection event: this connection's commits never checkpoint (the `Checkpointer` does)."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")


class Checkpointer:
    """Checkpoints the WAL of the SQLite file at `path` every `every_s` seconds until `close`."""

    def __init__(self, path: str, *, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self._path = path
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freshguard-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Checkpoint once more, then stop the thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stop.wait(self._every_s)
                try:
                    if connection is None:
                        connection = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
                        connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}").fetchall()
                    checkpoint(connection)
                except sqlite3.Error as exc:  # a read-only or vanished file: try again next time, with a new connection
                    _log.debug("a WAL checkpoint of %s failed: %s", self._path, exc)
                    if connection is not None:
                        connection.close()
                        connection = None
                if stopping:
                    return
        finally:
            if connection is not None:
                connection.close()
