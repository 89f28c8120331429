"""Reading a lineage store's database back with plain SQL, apart from the store under test."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from guard.lineage.store import LineageStore, alembic_config


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
