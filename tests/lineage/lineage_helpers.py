"""Reading a lineage store's database back with plain SQL, apart from the store under test; concurrent checks."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from guard import Guard
from guard.lineage.store import LineageStore, alembic_config
from tests.conftest import RecordFactory
from tests.integrations.conftest import run_async


def scalar(url: str, sql: str, **params: Any) -> Any:
    """One value from the store's database, read on an engine of its own."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


def forget_watermarks(url: str) -> None:
    """Empty the store's watermarks table (when the store has made it), so a check starts with nothing learned."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("watermarks"):
                conn.execute(sa.text("DELETE FROM watermarks"))
    finally:
        engine.dispose()


def execute(url: str, sql: str, **params: Any) -> None:
    """Run one statement on the store's database and commit it."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """The tables in the store's database."""
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def is_utc(moment: Any) -> bool:
    """Whether a value read back is an aware datetime in UTC."""
    return getattr(moment, "utcoffset", lambda: None)() == timedelta(0)


def head_revision(store: LineageStore) -> str:
    """The newest migration the store's scripts know."""
    with store.engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    assert head is not None
    return head


def separate_checks(record: RecordFactory, count: int) -> list[list[dict[str, Any]]]:
    """`count` checks of five records each, about entities of their own."""
    return [[record(id=f"r{n}-{i}", key=f"C-{n}-{i}") for i in range(5)] for n in range(count)]


def concurrently(guard: Guard, batches: list[list[dict[str, Any]]]) -> tuple[list[str], int]:
    """The checks run concurrently on one event loop (a thread of its own): their run ids, and the loop's thread."""

    async def main() -> tuple[list[str], int]:
        results = await asyncio.gather(*(guard.acheck(batch, pipeline="concurrent") for batch in batches))
        return [result.run_id for result in results], threading.get_ident()

    return run_async(main)
