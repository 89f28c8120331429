"""The store's hold on its database: the engine, one transaction per use, every error a StoreError.

SQLite (a file) is the embedded default; PostgreSQL serves a team (`postgresql+psycopg://...`).
Messages show the URL without its password, and the driver's words without SQL or parameters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError, StatementError

from guard.errors import StoreError

#: The (backend, driver) pairs the store speaks: its SQL is written for these two.
_SUPPORTED = {"sqlite": "pysqlite", "postgresql": "psycopg"}


class StoreBase:
    """A database connection pool and the one way the store's parts use it (`_connect`)."""

    def __init__(self, url: str) -> None:
        self.url = _safe(url)  # shown in messages: never the password
        parsed = _parse_url(url)
        self._password = parsed.password if isinstance(parsed.password, str) else None
        try:
            self.engine: Engine = sa.create_engine(parsed, **_engine_options(parsed))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the lineage store {_safe(url)}: {self._scrub(exc)}") from exc
        self.dialect = self.engine.dialect.name
        # An in-memory SQLite database is one connection that every thread shares, one at a time.
        self._serial: AbstractContextManager[Any] = threading.RLock() if _in_memory(parsed) else nullcontext()
        # The COPY path runs on the driver's own cursor, outside SQLAlchemy's error translation.
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _connect(self, doing: str) -> Iterator[Connection]:
        """A connection in a transaction; every database error leaves as a StoreError."""
        with self._serial:
            try:
                connection = self.engine.connect()
            except (SQLAlchemyError, self._driver_error) as exc:
                raise StoreError(
                    f"cannot reach the lineage store {self.url} to {doing}: {self._scrub(exc)}; "
                    + (
                        "check that its folder exists and is writable"
                        if self.dialect == "sqlite"
                        else "check that the database is up and that the URL is right"
                    )
                ) from exc
            try:
                with connection, connection.begin():
                    yield connection
            except (SQLAlchemyError, self._driver_error) as exc:
                raise StoreError(f"the lineage store {self.url} failed to {doing}: {self._scrub(exc)}") from exc

    def _scrub(self, exc: BaseException) -> str:
        """The driver's own words for an error, without the SQL, parameters or password."""
        cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
        text = f"{type(cause).__name__}: {str(cause).strip()}"
        return text.replace(self._password, "***") if self._password else text


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


def _engine_options(url: URL) -> dict[str, Any]:
    if _in_memory(url):  # one connection for every thread: each new one would be another, empty database
        return {"connect_args": {"check_same_thread": False}, "poolclass": sa.pool.StaticPool}
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True}


#: How long a new connection keeps trying to put a database that another process holds into WAL mode.
_WAL_PATIENCE_S = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
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


def _memo(convert: Callable[[datetime], str]) -> Callable[[datetime], str]:
    """`convert` remembered per value: a check's records share few distinct timestamps."""
    seen: dict[datetime, str] = {}

    def remembered(moment: datetime) -> str:
        text = seen.get(moment)
        if text is None:
            text = seen[moment] = convert(moment)
        return text

    return remembered
