"""Supersession watermarks: the newest owner version known per entity, read in bulk and only ever raised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.decisions import Entity
from guard.lineage._base import StoreBase, as_stored_time
from guard.lineage._values import storable_column
from guard.lineage.tables import watermarks

#: SQLite looks watermarks up with IN lists of this many keys (it caps bound parameters).
_SCAN_FROM = 1000  # keys asked of one object from which a scan may beat index lookups
_LOOKUP_CHUNK = 400
#: PostgreSQL looks up every pair at once, joined to two arrays: psycopg prepares a statement it runs
#: often, and the generic plan of `key IN ($2, ..., $401)` made while the table was small scans it
#: (25 s for 50,000 keys); a join stays a hash or an index join whatever the plan.
_PG_WATERMARK_LOOKUP = (
    "SELECT w.object, w.key, w.updated_at "
    "FROM unnest(%s::text[], %s::text[]) AS wanted(object, key) "
    "JOIN watermarks AS w ON w.object = wanted.object AND w.key = wanted.key"
)

#: A watermark only ever goes up.
_RAISE_ONLY = (
    'ON CONFLICT (object, "key") DO UPDATE SET updated_at = excluded.updated_at, '
    "learned_from = excluded.learned_from, learned_at = excluded.learned_at "
    "WHERE excluded.updated_at > watermarks.updated_at"
)


class WatermarkStore(StoreBase):
    """Reading and raising watermarks."""

    def watermarks(self, entities: Iterable[Entity]) -> dict[Entity, datetime]:
        """The newest owner `updated_at` known for each of these entities (absent when none)."""
        asked = list(entities)
        stored = _storable_entities(asked)
        found: dict[Entity, datetime] = {}
        if not stored:
            return found
        pairs = list(set(stored))
        # The driver's own cursor: SQLAlchemy's execution machinery was half the cost of this read.
        with self._driver("read watermarks") as driver:
            if self.dialect == "postgresql":
                rows = driver.execute(_PG_WATERMARK_LOOKUP, ([obj for obj, _ in pairs], [key for _, key in pairs]))
                for obj, key, updated_at in rows:
                    found[(obj, key)] = updated_at.astimezone(UTC)
            else:
                _sqlite_watermarks(driver, pairs, found)
        if stored is asked:
            return found
        return {entity: found[kept] for entity, kept in zip(asked, stored, strict=True) if kept in found}

    def watermarks_of(self, objects: Iterable[str]) -> dict[Entity, datetime]:
        """Every watermark kept for these objects: what a check that cannot list its entities first (a
        distributed one) looks copies up in."""
        table = watermarks.c
        query = sa.select(table.object, table.key, table.updated_at).where(table.object.in_(list(objects)))
        with self._connect("read watermarks") as conn:
            return {(obj, key): updated_at for obj, key, updated_at in conn.execute(query)}

    async def awatermarks(self, entities: Iterable[Entity]) -> dict[Entity, datetime]:
        """`watermarks` for asyncio code. A SQLite file is read on the loop (a WAL read waits on no lock and
        takes microseconds); a database across a network is read on a thread, so that a stalled one blocks
        no other request."""
        if self.reads_inline:
            return self.watermarks(entities)
        return await asyncio.to_thread(self.watermarks, entities)

    def advance_watermarks(self, versions: Mapping[Entity, datetime], *, learned_from: str, at: datetime) -> None:
        """Raise each entity's watermark to the given version; an older version never lowers it."""
        if not versions:
            return
        with self._connect("write watermarks") as conn:
            self._advance(conn, versions, learned_from, at)

    def _advance(self, conn: Connection, versions: Mapping[Entity, datetime], learned_from: str, at: datetime) -> None:
        self._advance_each(conn, {entity: (version, at) for entity, version in versions.items()}, learned_from)

    def _advance_each(
        self, conn: Connection, versions: Mapping[Entity, tuple[datetime, datetime]], learned_from: str
    ) -> None:
        """Raise watermarks to (version, learned at) per entity, in one statement."""
        stamp = as_stored_time(self.dialect == "sqlite")  # versions repeat: convert once
        # One row per entity as stored (two keys may store alike), in key order: concurrent
        # writers then lock the rows they share in the same order and cannot deadlock.
        newest: dict[Entity, tuple[datetime, datetime]] = {}
        for entity, learned in zip(_storable_entities(list(versions)), versions.values(), strict=True):
            known = newest.get(entity)
            if known is None or learned[0] > known[0]:
                newest[entity] = learned
        params = [
            (obj, key, stamp(version), learned_from, stamp(at)) for (obj, key), (version, at) in sorted(newest.items())
        ]
        mark = "?" if self.dialect == "sqlite" else "%s"
        sql = (
            f'INSERT INTO watermarks (object, "key", updated_at, learned_from, learned_at) '  # noqa: S608
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) {_RAISE_ONLY}"
        )
        conn.exec_driver_sql(sql, params)


def _sqlite_watermarks(driver: Any, pairs: list[Entity], found: dict[Entity, datetime]) -> None:
    """Watermarks from SQLite: in one statement for a check of a few hundred entities; for a larger one by key
    lists per object, or by one scan of an object when most of its rows are wanted."""
    wanted: dict[str, list[str]] = {}
    for obj, key in pairs:
        wanted.setdefault(obj, []).append(key)
    parse = _memo_parse()
    if len(pairs) <= _LOOKUP_CHUNK:  # an everyday check: one statement, an index probe per entity
        clauses = " OR ".join(f'(object = ? AND "key" IN ({", ".join("?" * len(keys))}))' for keys in wanted.values())
        params = [value for obj, keys in wanted.items() for value in (obj, *keys)]
        query = f'SELECT object, "key", updated_at FROM watermarks WHERE {clauses}'  # noqa: S608 (marks only)
        for obj, key, text in driver.execute(query, params):
            found[(obj, key)] = parse(text)
        return
    rows_stored = driver.execute("SELECT max(rowid) FROM watermarks").fetchone()[0] or 0
    for obj, keys in wanted.items():
        if len(keys) >= _SCAN_FROM and len(keys) * 4 >= rows_stored:
            # Reading every row of the object beats thousands of index probes once most are asked for.
            asked = set(keys)
            rows: Iterable[tuple[str, str]] = (
                row
                for row in driver.execute('SELECT "key", updated_at FROM watermarks WHERE object = ?', (obj,))
                if row[0] in asked
            )
        else:
            rows = (
                row
                for start in range(0, len(keys), _LOOKUP_CHUNK)
                for row in driver.execute(
                    'SELECT "key", updated_at FROM watermarks WHERE object = ? AND "key" IN '  # noqa: S608
                    f"({', '.join('?' * len(keys[start : start + _LOOKUP_CHUNK]))})",
                    (obj, *keys[start : start + _LOOKUP_CHUNK]),
                )
            )
        for key, text in rows:
            found[(obj, key)] = parse(text)


def _memo_parse() -> Callable[[str], datetime]:
    """SQLite's naive UTC timestamp text as an aware datetime, parsed once per distinct text."""
    seen: dict[str, datetime] = {}

    def parse(text: str) -> datetime:
        moment = seen.get(text)
        if moment is None:
            moment = seen[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return moment

    return parse


def _storable_entities(entities: list[Entity]) -> list[Entity]:
    """The entities as the store keeps them; `entities` itself when nothing needs replacing."""
    objects = [obj for obj, _ in entities]
    keys = [key for _, key in entities]
    stored_objects, stored_keys = storable_column(objects), storable_column(keys)
    if stored_objects is objects and stored_keys is keys:
        return entities
    return list(zip(stored_objects, stored_keys, strict=True))
