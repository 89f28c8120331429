"""The store's hold on its database: the engine, one transaction per use, every error a StoreError.

SQLite (a file) is the embedded default; PostgreSQL serves a team (`postgresql+psycopg://...`).
Messages show the URL without its password, and the driver's words without SQL or parameters.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError, StatementError

from guard.errors import StoreError, StoreTimeoutError, StoreUnavailableError
from guard.limits import DEFAULT_STORE_TIMEOUT_S
from guard.lineage._checkpoints import JOURNAL_SIZE_LIMIT
from guard.lineage._deadlines import WATCHDOG, Watch

_log = logging.getLogger("freshguard.store")

#: The (backend, driver) pairs the store speaks: its SQL is written for these two.
_SUPPORTED = {"sqlite": "pysqlite", "postgresql": "psycopg"}


#: How long one store operation on the request path may take, unless the store is opened with another.
DEFAULT_TIMEOUT_S = DEFAULT_STORE_TIMEOUT_S
#: Reports that scan a window of history (health, impact, tallies) are off the request path: this much more time.
REPORT_EXTRA_S = 28.0
#: The server's own limit on one statement (PostgreSQL): a backstop should the client's cut-off not reach it.
SERVER_STATEMENT_TIMEOUT_S = 60


class StoreBase:
    """A database connection pool and the one way the store's parts use it (`_connect`).

    Every operation runs under a deadline (`timeout_s`, unless it says otherwise): one that
    overruns it is cut off and fails as a `StoreTimeoutError`; one that meets an error that may
    pass (a read-only file, a dropped connection) fails as a `StoreUnavailableError`. Either way
    the connection is discarded, so the next operation starts on a fresh one.
    """

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not timeout_s > 0:
            raise StoreError(f"the lineage store's timeout must be a positive number of seconds, got {timeout_s!r}")
        self.url = _safe(url)  # shown in messages: never the password
        self.timeout_s = float(timeout_s)
        parsed = _parse_url(url)
        self._password = parsed.password if isinstance(parsed.password, str) else None
        try:
            self.engine: Engine = sa.create_engine(parsed, **_engine_options(parsed, self.timeout_s))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the lineage store {_safe(url)}: {self._scrub(exc)}") from exc
        self.dialect = self.engine.dialect.name
        # An in-memory SQLite database is one connection that every thread shares, one at a time.
        self._serial: AbstractContextManager[Any] = threading.RLock() if _in_memory(parsed) else nullcontext()
        #: Reads are quick and wait on no lock or network (a SQLite file in WAL mode): fine on an event loop.
        self.reads_inline = self.dialect == "sqlite" and not _in_memory(parsed)
        # The COPY path runs on the driver's own cursor, outside SQLAlchemy's error translation.
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _connect(self, doing: str, *, bounded: bool = True, extra_s: float = 0.0) -> Iterator[Connection]:
        """A connection in a transaction, cut off after `timeout_s + extra_s` (never, unless `bounded`).

        Every database error leaves as a StoreError (StoreUnavailableError when it may pass), and
        the connection that saw it is discarded.
        """
        with self._serial, WATCHDOG.watch(self.timeout_s + extra_s if bounded else None) as watch:
            try:
                connection = self.engine.connect()
            except (SQLAlchemyError, self._driver_error) as exc:
                raise self._failure(doing, exc, watch, reaching=True) from exc
            try:
                watch.arm(_cutter(connection.connection.driver_connection, self.dialect))
                with connection.begin():
                    yield connection
            except (SQLAlchemyError, self._driver_error) as exc:
                _discard(connection)
                raise self._failure(doing, exc, watch) from exc
            finally:
                watch.disarm()
                connection.close()

    @contextmanager
    def _driver(self, doing: str) -> Iterator[Any]:
        """A pooled driver connection (sqlite3 or psycopg), for the request path's one-statement reads.

        The same deadline and error handling as `_connect`, without SQLAlchemy's execution machinery
        (about half the cost of a watermark read) and without beginning a transaction: one statement
        reads a consistent snapshot by itself.
        """
        with self._serial, WATCHDOG.watch(self.timeout_s) as watch:
            try:
                pooled = self.engine.raw_connection()
            except (SQLAlchemyError, self._driver_error) as exc:
                raise self._failure(doing, exc, watch, reaching=True) from exc
            driver = pooled.driver_connection
            try:
                watch.arm(_cutter(driver, self.dialect))
                yield driver
            except (SQLAlchemyError, self._driver_error) as exc:
                pooled.invalidate()
                raise self._failure(doing, exc, watch) from exc
            finally:
                watch.disarm()
                pooled.close()

    def _failure(self, doing: str, exc: BaseException, watch: Watch, *, reaching: bool = False) -> StoreError:
        """The StoreError to raise for a database error met while trying `doing`."""
        words = self._scrub(exc)
        if watch.fired or isinstance(exc, sa.exc.TimeoutError):
            return StoreTimeoutError(
                f"the lineage store {self.url} did not {doing} within {self.timeout_s:g} s (its deadline), "
                f"so it was cut off ({words}); the store may be overloaded or unreachable: try again shortly"
            )
        if reaching:
            return StoreUnavailableError(
                f"cannot reach the lineage store {self.url} to {doing}: {words}; "
                + (
                    "check that its folder exists and is writable"
                    if self.dialect == "sqlite"
                    else "check that the database is up and that the URL is right"
                )
            )
        cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
        if self.dialect == "sqlite" and "readonly" in str(cause):
            # Every pooled connection opened while the file was read-only stays read-only: a worker whose
            # writes go to its writer process only reads with them, and would keep them past the spell.
            self.engine.dispose()
        if _passing(cause):
            return StoreUnavailableError(f"the lineage store {self.url} could not {doing}: {words}; try again shortly")
        return StoreError(f"the lineage store {self.url} failed to {doing}: {words}")

    def _scrub(self, exc: BaseException) -> str:
        """The driver's own words for an error, without the SQL, parameters or password."""
        cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
        text = f"{type(cause).__name__}: {str(cause).strip()}"
        return text.replace(self._password, "***") if self._password else text


#: SQLite raises OperationalError for a schema that is not there as well: that one does not pass by itself.
_LASTING = ("no such table", "no such column", "syntax error", "has no column")


def _passing(cause: BaseException) -> bool:
    """True for a driver error that may pass by itself (the driver's OperationalError family)."""
    if any(words in str(cause) for words in _LASTING):
        return False
    return type(cause).__name__ in {"OperationalError", "InterfaceError"} or isinstance(cause, OSError)


def _cutter(driver: Any, dialect: str) -> Callable[[], None]:
    """How to make a call blocked on a driver connection fail now: shut its socket (PostgreSQL), interrupt SQLite."""
    if dialect == "sqlite":
        interrupt: Callable[[], None] = driver.interrupt
        return interrupt
    descriptor: int = driver.pgconn.socket

    def shut() -> None:
        # A duplicate of the descriptor names the same socket: shutting it down wakes the blocked read.
        duplicate = socket.socket(fileno=os.dup(descriptor))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()

    return shut


def _discard(connection: Connection) -> None:
    """Drop the connection from the pool: the next operation opens a fresh one."""
    try:
        connection.invalidate()
    except Exception:  # already broken beyond closing: the pool forgets it all the same
        _log.debug("invalidating a store connection failed", exc_info=True)


def _parse_url(url: str) -> URL:
    """The URL of a database this store can speak to, or a StoreError that says which would do."""
    try:
        parsed = sa.engine.make_url(url)
    except (SQLAlchemyError, ValueError, TypeError) as exc:
        raise StoreError(
            f"the lineage store URL {_safe(url)} does not parse ({type(exc).__name__}); "
            "use sqlite:///path/to/freshguard.db or postgresql+psycopg://user@host:5432/database"
        ) from exc
    if parsed.drivername == "postgres":  # the spelling Heroku and others hand out
        parsed = parsed.set(drivername="postgresql")
    backend, _, driver = parsed.drivername.partition("+")
    if backend in _SUPPORTED and not driver:  # SQLAlchemy 2.0 would pick psycopg2 for postgresql://
        driver = _SUPPORTED[backend]
        parsed = parsed.set(drivername=f"{backend}+{driver}")
    if _SUPPORTED.get(backend) != driver:
        raise StoreError(
            f"the lineage store supports SQLite (sqlite:///path.db) and PostgreSQL through psycopg "
            f"(postgresql+psycopg://...), not {parsed.drivername} ({_safe(url)})"
        )
    return parsed


def _in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _engine_options(url: URL, timeout_s: float) -> dict[str, Any]:
    if _in_memory(url):  # one connection for every thread: each new one would be another, empty database
        return {"connect_args": {"check_same_thread": False}, "poolclass": sa.pool.StaticPool}
    if url.get_backend_name() == "sqlite":
        # The busy timeout fits the deadline: a writer waits for another's lock at most that long.
        return {"connect_args": {"check_same_thread": False, "timeout": timeout_s}, "pool_timeout": timeout_s}
    milliseconds = max(1, round(timeout_s * 1000))
    defaults = {  # the URL's own query parameters win
        "connect_timeout": max(2, math.ceil(timeout_s)),  # libpq's least
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "options": f"-c statement_timeout={SERVER_STATEMENT_TIMEOUT_S * 1000} -c lock_timeout={milliseconds} "
        f"-c idle_in_transaction_session_timeout={SERVER_STATEMENT_TIMEOUT_S * 1000}",
    }
    connect_args = {name: value for name, value in defaults.items() if name not in url.query}
    # No ping per checkout: a connection that fails is discarded then (see `_connect`), not tested before.
    return {"connect_args": connect_args, "pool_timeout": timeout_s, "pool_size": 8, "max_overflow": 8}


#: How long a new connection keeps trying to put a database that another process holds into WAL mode.
_WAL_PATIENCE_S = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: the lineage indexes stay in memory
        cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")  # a WAL started over is cut back
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """Put the database in WAL mode (it stays so), waiting out another process that holds it.

    Switching the mode needs the database to itself, and SQLite answers "database is locked" at
    once rather than through the busy timeout while another process migrates a new file; a
    database already in WAL mode (every one after its first connection) needs no switch.
    """
    import sqlite3

    deadline = time.monotonic() + _WAL_PATIENCE_S
    pause = 0.005
    while True:
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() == "wal" or str(mode).lower() == "memory":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _safe(url: str) -> str:
    """The URL without its password (in the user part or as a `password` parameter), for messages."""
    try:
        parsed = sa.engine.make_url(url)
    except (SQLAlchemyError, ValueError):
        return "<unparseable URL>"
    secret = {name: "***" for name in parsed.query if name.lower() in ("password", "passwd", "sslpassword")}
    return parsed.update_query_dict(secret).render_as_string(hide_password=True)


def as_stored_time(sqlite: bool) -> Callable[[datetime], Any]:
    """How a timestamp is bound on the driver: SQLite's text (each value converted once), PostgreSQL's own."""
    return _memo(_sqlite_time) if sqlite else _unchanged


def _unchanged(moment: datetime) -> datetime:
    return moment


def _memo(convert: Callable[[datetime], str]) -> Callable[[datetime], str]:
    """`convert` remembered per value: a check's records share few distinct timestamps."""
    seen: dict[datetime, str] = {}

    def remembered(moment: datetime) -> str:
        text = seen.get(moment)
        if text is None:
            text = seen[moment] = convert(moment)
        return text

    return remembered
