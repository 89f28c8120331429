"""Alembic migrations of the lineage store: create, repeat, undo, match the tables, and run side by side."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from guard import Guard, LineageStore, Policy, StoreError
from guard.lineage.store import alembic_config
from guard.lineage.tables import metadata
from tests.conftest import NOW, RecordFactory
from tests.lineage.lineage_helpers import execute, head_revision, scalar, table_names

LINEAGE_TABLES = {
    "runs", "run_records", "watermarks", "heartbeats", "consumption", "policy_versions", "run_tallies",
    "point_states", "state_changes", "incidents", "alert_outbox", "receipts",
    "store_probes", "tally_rollups", "rollup_reasons", "tally_rollups_hourly", "rollup_reasons_hourly",
    "entity_sightings", "writer_syncs", "prune_horizons",
}  # fmt: skip


def test_migrating_a_fresh_database_creates_the_tables(store_url: str) -> None:
    store = LineageStore(store_url, migrate=False)
    try:
        assert table_names(store_url) == set()

        store.migrate()

        assert table_names(store_url) == {*LINEAGE_TABLES, "alembic_version"}
        assert scalar(store_url, "SELECT version_num FROM alembic_version") == head_revision(store)
    finally:
        store.close()


def test_migrating_again_is_a_no_op(
    minimal_policy: Policy, store_url: str, store: LineageStore, record: RecordFactory
) -> None:
    result = Guard(minimal_policy, store=store).check([record()], pipeline="rag", now=NOW)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    store.migrate()
    LineageStore(store_url).close()

    ddl = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert ddl == []
    assert scalar(store_url, "SELECT count(*) FROM alembic_version") == 1
    assert table_names(store_url) == {*LINEAGE_TABLES, "alembic_version"}
    assert store.get_run(result.run_id) is not None


def test_downgrade_to_base_then_upgrade_rebuilds_a_working_store(
    minimal_policy: Policy, store_url: str, store: LineageStore, record: RecordFactory
) -> None:
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert table_names(store_url) & LINEAGE_TABLES == set()
    assert scalar(store_url, "SELECT count(*) FROM alembic_version") == 0

    with store.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")

    assert table_names(store_url) == {*LINEAGE_TABLES, "alembic_version"}
    with Guard(minimal_policy, store=store_url) as guard:
        result = guard.check([record()], pipeline="rag", now=NOW)
    assert store.get_run(result.run_id) is not None


def test_the_migrated_schema_matches_the_table_metadata(store: LineageStore) -> None:
    """Autogenerate finds nothing to change, and every column, key and index is where tables.py says."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []

        inspector = sa.inspect(conn)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns]
            assert {name: c["nullable"] for name, c in columns.items()} == {c.name: c.nullable for c in table.columns}
            primary_key = inspector.get_pk_constraint(table.name)["constrained_columns"]
            assert primary_key == [c.name for c in table.primary_key.columns]
            # PostgreSQL lists the index behind each unique constraint too: those are compared as constraints.
            indexes = {
                i["name"]: i["column_names"]
                for i in inspector.get_indexes(table.name)
                if not i.get("duplicates_constraint")
            }
            assert indexes == {i.name: [c.name for c in i.columns] for i in table.indexes}
            uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)}
            declared = {
                tuple(c.name for c in constraint.columns)
                for constraint in table.constraints
                if isinstance(constraint, sa.UniqueConstraint)
            } | {(c.name,) for c in table.columns if c.unique}
            assert uniques == declared


def test_a_schema_from_a_newer_freshguard_is_refused(store_url: str, store: LineageStore) -> None:
    execute(store_url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")

    with pytest.raises(StoreError, match="newer Freshguard") as caught:
        LineageStore(store_url)

    assert "lineage store" in str(caught.value)


def test_stores_migrating_at_once_in_threads_do_not_fail(store_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait()
        try:
            LineageStore(store_url).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert scalar(store_url, "SELECT count(*) FROM alembic_version") == 1


#: A process that opens (and so migrates) a store once told to go: several start migrating at once.
MIGRATING_PROCESS = """
import pathlib, sys, time
from alembic import command
from guard import LineageStore
ready, go, url = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
ready.touch()
while not go.exists():
    time.sleep(0.002)
LineageStore(url).close()
"""


def test_stores_migrating_at_once_in_processes_do_not_fail(store_url: str, tmp_path: Path) -> None:
    """Across processes the store serialises migrations itself (an advisory lock; BEGIN IMMEDIATE on SQLite)."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(4)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATING_PROCESS, str(flag), str(go), store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        outcomes: list[Any] = [(p.communicate(timeout=120)[1], p.returncode) for p in processes]
    finally:
        for process in processes:
            process.kill()

    assert outcomes == [("", 0)] * 4
    assert scalar(store_url, "SELECT count(*) FROM alembic_version") == 1


class LockedCursor:
    """A cursor whose database is held by another process for the first `busy` asks (SQLite's BUSY_RECOVERY case)."""

    def __init__(self, busy: int, mode: str = "delete", error: str = "database is locked") -> None:
        self.busy, self.mode, self.error = busy, mode, error
        self.asked: list[str] = []

    def execute(self, sql: str) -> LockedCursor:
        import sqlite3

        self.asked.append(sql)
        if self.busy:
            self.busy -= 1
            raise sqlite3.OperationalError(self.error)
        if sql == "PRAGMA journal_mode=WAL":
            self.mode = "wal"
        return self

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


def test_a_new_connection_waits_out_a_database_another_process_holds() -> None:
    """SQLite can answer "database is locked" at once, past its busy timeout, while a new file is set up."""
    from guard.lineage._base import _wal

    cursor = LockedCursor(busy=3)
    _wal(cursor)
    assert cursor.mode == "wal"
    assert cursor.asked[-1] == "PRAGMA journal_mode=WAL"


def test_a_database_already_in_wal_mode_is_not_switched_again() -> None:
    from guard.lineage._base import _wal

    cursor = LockedCursor(busy=0, mode="wal")
    _wal(cursor)
    assert cursor.asked == ["PRAGMA journal_mode"]


def test_other_errors_while_switching_to_wal_are_not_waited_out() -> None:
    import sqlite3

    from guard.lineage._base import _wal

    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _wal(LockedCursor(busy=1, error="disk I/O error"))


def test_migration_0006_builds_the_rollups_sightings_and_writers_from_the_history_of_0005(
    minimal_policy: Policy, store_url: str, store: LineageStore, record: RecordFactory
) -> None:
    """A store written before 0006 (history in runs, run_records, run_tallies, heartbeats) upgrades to the same
    rollups, entity sightings and newest syncs that writing the same history after 0006 keeps."""
    from datetime import timedelta

    guard = Guard(minimal_policy, store=store)
    for minutes in range(0, 600, 13):
        at = NOW - timedelta(minutes=minutes)
        records = [record(key=f"C-{minutes % 7}", source="sap"), record(key="C-1", email="broken"),
                   record(key=f"C-{minutes % 3}", source="warehouse", observed_at="2026-11-01T00:00:00Z")]  # fmt: skip
        guard.check(records, pipeline="rag", now=at)
        store.record_heartbeat("sap", "customer", at, at, writer=f"job-{minutes % 3}")
    derived = ("tally_rollups", "rollup_reasons", "tally_rollups_hourly", "rollup_reasons_hourly", "entity_sightings",
               "writer_syncs")  # fmt: skip
    written = {table: _rows(store_url, table) for table in derived}
    health = [point.to_dict() for point in guard.health(NOW)]
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0005")
    assert table_names(store_url) & set(derived) == set()

    store.migrate()

    assert {table: _rows(store_url, table) for table in derived} == written
    assert all(written.values())
    assert [point.to_dict() for point in guard.health(NOW)] == health


def _rows(url: str, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table}")))  # noqa: S608
    finally:
        engine.dispose()
