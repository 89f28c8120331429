"""What integrations and model calls feed the store besides checks: sync heartbeats and consumption links.

Functions over a connection the store opened (and its transaction); `LineageStore` exposes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.lineage._base import StoreBase
from guard.lineage._rollups import upsert_statement
from guard.lineage._values import json_value, storable
from guard.lineage.tables import consumption, heartbeats, runs, writer_syncs

#: The consumer members that name a model call; the others are kept as its `extra`.
_CALL_MEMBERS = ("model", "call_id")


def insert_heartbeat(
    conn: Connection, source: str, obj: str, synced_at: datetime, received_at: datetime, *, writer: str = ""
) -> dict[str, Any]:
    """Keep one heartbeat (every one is kept: the history shows how far behind a sync ran)."""
    row = {
        "source": storable(source), "object": storable(obj), "writer": storable(writer),
        "synced_at": synced_at, "received_at": received_at,
    }  # fmt: skip
    conn.execute(heartbeats.insert(), row)
    conn.execute(
        _newest_sync(conn.dialect.name),
        {name: row[name] for name in ("source", "object", "writer", "synced_at")},
    )
    return row


@functools.cache
def _newest_sync(dialect: str) -> Any:
    """Insert a writer's sync, or move its newest `synced_at` forward (never back): built once per dialect."""
    insert = upsert_statement(dialect, writer_syncs)
    newer = insert.excluded.synced_at > writer_syncs.c.synced_at
    return insert.on_conflict_do_update(
        index_elements=["source", "object", "writer"],
        set_={"synced_at": sa.case((newer, insert.excluded.synced_at), else_=writer_syncs.c.synced_at)},
    )


def latest_heartbeats(conn: Connection) -> dict[tuple[str, str, str], datetime]:
    """The newest `synced_at` reported by each writer of each (source, object): one row per writer."""
    query = sa.select(writer_syncs.c.source, writer_syncs.c.object, writer_syncs.c.writer, writer_syncs.c.synced_at)
    return {(source, obj, writer): synced_at for source, obj, writer, synced_at in conn.execute(query)}


def heartbeats_since(conn: Connection, start: datetime) -> list[dict[str, Any]]:
    """Every heartbeat received since `start`, oldest first (for lag over time)."""
    query = sa.select(heartbeats).where(heartbeats.c.received_at >= start).order_by(heartbeats.c.received_at)
    return [dict(row) for row in conn.execute(query).mappings()]


def consumer_call(consumer: Mapping[str, Any] | None) -> tuple[str, str | None, dict[str, Any] | None] | None:
    """The model call a check's consumer names, as (model, call_id, extra); None when it names no model."""
    if consumer is None:
        return None
    model = consumer.get("model")
    if model is None or model == "":
        return None
    call_id = consumer.get("call_id")
    extra = {name: value for name, value in consumer.items() if name not in _CALL_MEMBERS}
    return _text(model), None if call_id is None else _text(call_id), extra or None


def insert_call(
    conn: Connection,
    run_id: str,
    model: str,
    call_id: str | None,
    extra: Mapping[str, Any] | None,
    *,
    linked_at: datetime,
) -> dict[str, Any]:
    """Link a run to a model call; a link already kept (same model and call id) is not written twice.

    Returns the link as kept, with `extra` a mapping (empty when the call said nothing else), as readers give it.
    """
    row = {
        "run_id": storable(run_id),
        "model": storable(model),
        "call_id": None if call_id is None else storable(call_id),
        "linked_at": linked_at,
        "extra": json_value(extra) if extra else None,
    }
    same_call = consumption.c.call_id.is_(None) if row["call_id"] is None else consumption.c.call_id == row["call_id"]
    known = (
        conn.execute(
            sa.select(consumption.c.linked_at, consumption.c.extra).where(
                consumption.c.run_id == row["run_id"], consumption.c.model == row["model"], same_call
            )
        )
        .mappings()
        .first()
    )
    if known is not None:
        return {**row, **known, "extra": known["extra"] or {}}
    conn.execute(consumption.insert(), row)
    return {**row, "extra": row["extra"] or {}}


def calls_by_run(conn: Connection, run_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The model calls linked to each of these runs, in the order they were linked."""
    wanted = sorted(set(run_ids))
    found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in wanted}
    for start in range(0, len(wanted), 400):  # SQLite caps bound parameters
        query = (
            sa.select(consumption.c.run_id, consumption.c.model, consumption.c.call_id, consumption.c.linked_at,
                      consumption.c.extra)
            .where(consumption.c.run_id.in_(wanted[start : start + 400]))
            .order_by(consumption.c.linked_at, consumption.c.id)
        )  # fmt: skip
        for row in conn.execute(query).mappings():
            found[row["run_id"]].append(
                {"model": row["model"], "call_id": row["call_id"], "linked_at": row["linked_at"],
                 "extra": row["extra"] or {}}
            )  # fmt: skip
    return found


def _text(value: Any) -> str:
    return storable(value if isinstance(value, str) else str(value))


class FeedStore(StoreBase):
    """Heartbeats and consumption links."""

    def link_consumption(
        self,
        run_id: str,
        model: str,
        call_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        *,
        linked_at: datetime,
    ) -> dict[str, Any] | None:
        """Record that a model call consumed a run's allowed records; None when the store has no such run."""
        with self._connect("link a run to a model call") as conn:
            known = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == storable(run_id))).first()
            if known is None:
                return None
            return insert_call(conn, run_id, model, call_id, extra, linked_at=linked_at)

    def record_heartbeat(
        self, source: str, obj: str, synced_at: datetime, received_at: datetime, *, writer: str = ""
    ) -> dict[str, Any]:
        """Keep a sync heartbeat: `writer` of `source` finished syncing `obj` as of `synced_at`."""
        with self._connect("record a heartbeat") as conn:
            return insert_heartbeat(conn, source, obj, synced_at, received_at, writer=writer)

    def latest_heartbeats(self) -> dict[tuple[str, str, str], datetime]:
        """The newest sync reported by each writer of each (source, object)."""
        with self._connect("read heartbeats") as conn:
            return latest_heartbeats(conn)

    def heartbeats_since(self, start: datetime) -> list[dict[str, Any]]:
        """Every heartbeat received since `start`, oldest first."""
        with self._connect("read heartbeats") as conn:
            return heartbeats_since(conn, start)
