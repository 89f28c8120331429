"""The lineage store: every check, every decision, the per-entity watermarks, heartbeats, policy
versions, consumption links and operations (states, incidents, alerts). The only SQL.

`LineageStore` is one class made of one part per concern, each with its SQL beside it:
`_base` (engine and transactions), `_watermarks`, `_history` (reading checks back), `_feeds`
(heartbeats, consumption), `_policies`, `_operations`. Writes of a check's rows go through the
driver's fastest bulk path (SQLite executemany, PostgreSQL COPY), in one transaction with the run,
its tallies and its watermark updates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from guard.decisions import Action, CheckResult, Entity, Reason
from guard.errors import StoreError
from guard.lineage import _feeds, _tallies
from guard.lineage._base import _memo, _sqlite_time
from guard.lineage._feeds import FeedStore
from guard.lineage._history import HistoryStore
from guard.lineage._operations import OperationsStore
from guard.lineage._policies import PolicyStore
from guard.lineage._values import content_hash, explain, json_value, storable, storable_column
from guard.lineage._watermarks import WatermarkStore, _identity
from guard.lineage.tables import runs
from guard.tallies import tally_check

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Entity", "LineageStore", "alembic_config", "content_hash"]

_RECORD_COLUMNS = (
    "run_id", "position", "record_id", "object", "key", "source", "observed_at",
    "updated_at", "content_hash", "age_s", "action", "reasons", "explanations",
)  # fmt: skip
#: Serialises migrations across processes on one PostgreSQL database (`pg_advisory_xact_lock`).
_MIGRATION_LOCK_KEY = 7414243
#: Alembic keeps its `context` and `op` in process globals: one migration at a time per process.
_migrating = threading.Lock()


class LineageStore(WatermarkStore, HistoryStore, FeedStore, PolicyStore, OperationsStore):
    """Where checks are remembered. Open one per process and share it; it is thread-safe."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        super().__init__(url)
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.engine.dispose()
                raise

    def migrate(self) -> None:
        """Bring the schema up to date with Alembic, in one transaction, one migrator at a time."""
        from alembic import command
        from alembic.util import CommandError

        with _migrating, self._connect("migrate its schema") as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            else:
                # pysqlite runs DDL outside any transaction and takes the write lock late;
                # BEGIN IMMEDIATE makes the migration atomic and waits out another process's.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                command.upgrade(alembic_config(conn), "head")
            except CommandError as exc:
                raise StoreError(
                    f"the lineage store {self.url} cannot be migrated: {exc}; its schema may come from "
                    "a newer Freshguard: upgrade Freshguard, or use another database"
                ) from exc

    def record_check(self, result: CheckResult, records: Sequence[Any], learned: Mapping[Entity, datetime]) -> None:
        """Write a check: its run, one row per record, and the owner versions it taught."""
        self.write_check(result, [content_hash(record) for record in records], learned)

    def write_check(
        self, result: CheckResult, hashes: Sequence[str | None], learned: Mapping[Entity, datetime]
    ) -> None:
        """`record_check` for records already reduced to their content hashes (`content_hash`), in order."""
        table = result.decisions
        counts = result.counts
        run_id = storable(result.run_id)
        run_row = {
            "run_id": run_id,
            "pipeline": storable(result.pipeline),
            "checked_at": result.checked_at,
            "policy_name": storable(result.policy.name),
            "policy_version": result.policy.version,
            "policy_hash": result.policy.hash,
            "verdict": result.verdict.value,
            "records": len(table),
            "allowed": counts[Action.ALLOW],
            "warned": counts[Action.WARN],
            "blocked": counts[Action.BLOCK],
            "duration_ms": result.duration_s * 1000,
            "consumer": json_value(result.consumer) if result.consumer is not None else None,
        }
        columns = (
            storable_column(table.ids), storable_column(table.objects), storable_column(table.keys),
            storable_column(table.sources), table.observed, table.updated, hashes, table.ages,
            table.actions, table.reasons,
        )  # fmt: skip
        rows = record_rows(run_id, columns, _sqlite_time if self.dialect == "sqlite" else None)
        call = _feeds.consumer_call(result.consumer)
        tallies = tally_check(table)
        with self._connect("record a check") as conn:
            conn.execute(runs.insert(), run_row)
            if rows:
                self._insert_records(conn, rows)
            _tallies.insert(conn, run_id, result.checked_at, storable(result.pipeline), tallies)
            if learned:
                self._advance(conn, learned, "owner_record", result.checked_at)
            if call is not None:
                _feeds.insert_call(conn, run_id, *call, linked_at=result.checked_at)

    def _insert_records(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        columns = ", ".join(f'"{c}"' for c in _RECORD_COLUMNS)
        if self.dialect == "postgresql":
            # The driver connection is the one SQLAlchemy's transaction runs on: the COPY joins it.
            with (
                conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
                cursor.copy(f"COPY run_records ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in _RECORD_COLUMNS)
            conn.exec_driver_sql(f"INSERT INTO run_records ({columns}) VALUES ({marks})", rows)  # noqa: S608


def record_rows(
    run_id: str, columns: tuple[Sequence[Any], ...], stamp: Callable[[datetime], str] | None
) -> list[tuple[Any, ...]]:
    """The `run_records` rows of a check, from its decision columns (and the records' content hashes).

    `stamp` is how the dialect stores a timestamp (None: as it is).
    """
    when = _memo(stamp) if stamp is not None else _identity
    return [
        (
            run_id, position, record_id, obj, key, source,
            None if observed is None else when(observed), None if updated is None else when(updated),
            digest, age, action.value, *(_words(reasons) if reasons else ("", None)),
        )
        for position, (record_id, obj, key, source, observed, updated, digest, age, action, reasons) in enumerate(
            zip(*columns, strict=True)
        )
    ]  # fmt: skip


def _words(reasons: Sequence[Reason]) -> tuple[str, str]:
    """The stored `reasons` (codes) and `explanations` (JSON) of one decision."""
    # ReasonCode is a StrEnum: its members are their values as text, without the enum's `value` lookup.
    return ",".join([r.code for r in reasons]), explain(reasons)


def alembic_config(connection: Connection) -> Config:
    """An Alembic `Config` for the store's migrations, to run on `connection` (as `migrate` does)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config
