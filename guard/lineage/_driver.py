"""Statements the writer runs on the database driver, compiled once and bound by the store's own column types.

SQLAlchemy's execution and its per-value type processing cost the lineage writer as much as the
database's own inserts. A statement here is compiled once per dialect; each row's values are read in
the statement's order and only timestamps (`UTCDateTime`) and JSON columns are converted, as the
types would convert them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from guard.lineage._base import _sqlite_time
from guard.lineage._values import json_text
from guard.lineage.tables import UTCDateTime

Converters = tuple[tuple[int, Callable[[Any], Any]], ...]


def executemany(conn: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run `statement` (an INSERT or an upsert, without values) once for each of `rows`, on the driver."""
    if not rows:
        return
    sql, names, converters, positional = _compiled(statement, conn.dialect)
    params: list[Any] = []
    for row in rows:
        values = [row[name] for name in names]
        for position, convert in converters:
            if (value := values[position]) is not None:
                values[position] = convert(value)
        params.append(tuple(values) if positional else dict(zip(names, values, strict=True)))
    conn.exec_driver_sql(sql, params)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`rows` (one value per column) into `table`, on the driver."""
    executemany(conn, _insert(table), rows)


@functools.cache
def _insert(table: sa.Table) -> Any:
    return table.insert()


def _compiled(statement: Any, dialect: Dialect) -> tuple[str, tuple[str, ...], Converters, bool]:
    """`statement` for `dialect`: its SQL, its parameters in order, their conversions, whether it binds by position."""
    key = (statement, type(dialect), dialect.paramstyle)  # not the dialect itself: one per store opened
    known = _statements.get(key)
    if known is None:
        compiled = statement.compile(dialect=dialect)
        positional = compiled.positiontup is not None
        names = tuple(compiled.positiontup if positional else compiled.binds)
        converters = tuple(
            (position, convert)
            for position, name in enumerate(names)
            if (convert := _converter(compiled.binds[name].type, dialect.name)) is not None
        )
        known = _statements[key] = (compiled.string, names, converters, positional)
    return known


_statements: dict[tuple[Any, type[Dialect], str], tuple[str, tuple[str, ...], Converters, bool]] = {}


def _converter(kind: Any, dialect: str) -> Callable[[Any], Any] | None:
    """How a value of column type `kind` is bound on `dialect`'s driver (None: as it is)."""
    sqlite = dialect == "sqlite"
    if isinstance(kind, UTCDateTime):
        return _sqlite_time if sqlite else _in_utc
    if isinstance(kind, sa.JSON):
        if sqlite:
            return json_text  # what SQLAlchemy's JSON type binds on SQLite, only faster
        from psycopg.types.json import Json

        return Json
    return None


def _in_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
