"""The lineage store: every check, every decision, the per-entity watermarks, heartbeats, policy
versions, consumption links and operations (states, incidents, alerts). The only SQL.

`LineageStore` is one class made of one part per concern, each with its SQL beside it:
`_base` (engine and transactions), `_watermarks`, `_history` (reading checks back), `_feeds`
(heartbeats, consumption), `_policies`, `_operations`. Writes of a check's rows go through the
driver's fastest bulk path (SQLite executemany, PostgreSQL COPY), in one transaction with the run,
its tallies and its watermark updates.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from guard.decisions import Action, CheckResult, Entity, PolicyRef, Reason, verdict_of_counts
from guard.errors import StoreError, StoreTimeoutError
from guard.lineage import _feeds, _rollups, _sightings, _tallies
from guard.lineage._base import DEFAULT_TIMEOUT_S, as_stored_time
from guard.lineage._checkpoints import Checkpointer, no_autocheckpoint
from guard.lineage._driver import insert_rows
from guard.lineage._feeds import FeedStore
from guard.lineage._group_commit import GroupCommitWriter, LoopGroupCommit
from guard.lineage._history import HistoryStore
from guard.lineage._operations import OperationsStore
from guard.lineage._policies import PolicyStore
from guard.lineage._receipts import ReceiptStore
from guard.lineage._retention import PruneReport, Retention, RetentionStore
from guard.lineage._values import content_hash, explain, json_value, storable, storable_column
from guard.lineage._watermarks import WatermarkStore
from guard.lineage._writer_process import ProcessWriter
from guard.lineage.tables import run_tallies, runs
from guard.tallies import Tally, tally_check

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Entity", "LineageStore", "PruneReport", "Retention", "RunSummary", "alembic_config", "content_hash"]

_RECORD_COLUMNS = (
    "run_id", "position", "record_id", "object", "key", "source", "observed_at",
    "updated_at", "content_hash", "age_s", "action", "reasons", "explanations",
)  # fmt: skip
#: A check's write gets this much more time than the store's deadline for each record it carries (seconds).
WRITE_S_PER_RECORD = 0.0005
#: How often a SQLite writer that finds the write lock held tries again (seconds).
_LOCK_RETRY_S = 0.001
#: A PostgreSQL batch of at most this many rows goes in one round trip (pipeline mode); a larger one by COPY.
PIPELINE_ROWS = 2_000
#: Serialises migrations across processes on one PostgreSQL database (`pg_advisory_xact_lock`).
_MIGRATION_LOCK_KEY = 7414243
#: Alembic keeps its `context` and `op` in process globals: one migration at a time per process.
_migrating = threading.Lock()


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A check's run as the store keeps it: who ran it, under which policy, and how many records got each action."""

    run_id: str
    pipeline: str
    policy: PolicyRef
    checked_at: datetime
    counts: Mapping[Action, int]
    duration_s: float
    consumer: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PreparedCheck:
    """The rows one check writes: its run, its records, its tallies, the owner versions it taught, its model call."""

    run: dict[str, Any]
    records: list[tuple[Any, ...]]
    tallies: list[dict[str, Any]]
    learned: Mapping[Entity, datetime]
    checked_at: datetime
    call: tuple[str, str | None, dict[str, Any] | None] | None

    def sightings(self) -> Iterator[tuple[tuple[str, str, str], datetime]]:
        """The (source, object, key) of each record that named all three, with the check's time."""
        for row in self.records:
            obj, key, source = row[3], row[4], row[5]
            if obj is not None and key is not None and source is not None:
                yield (source, obj, key), self.checked_at

    @property
    def size(self) -> int:
        """Rows it writes (what a batch is capped by)."""
        return 1 + len(self.records)


class LineageStore(WatermarkStore, HistoryStore, FeedStore, PolicyStore, OperationsStore, ReceiptStore, RetentionStore):
    """Where checks are remembered. Open one per process and share it; it is thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        group_commit: bool = False,
        writer_process: bool = False,
    ) -> None:
        """Open the store at `url`; `timeout_s` is each operation's deadline (a check's write gets more per record).

        `group_commit`: concurrent `record_check` calls share transactions, written by one thread
        (for services; a single caller gains nothing from it). `writer_process`: with
        `group_commit`, the batches are written by a child process (`ProcessWriter`), so that the
        CPU of writing leaves the process that serves; not for an in-memory SQLite database.
        """
        super().__init__(url, timeout_s=timeout_s)
        # Not for an in-memory SQLite database: the child would open a database of its own.
        in_child = group_commit and writer_process and (self.reads_inline or self.dialect != "sqlite")
        #: asyncio callers of a SQLite file commit on their loop (the lock free) or through the writer (it busy).
        on_loop = group_commit and not in_child and self.reads_inline
        if on_loop:  # commits on the loop never checkpoint; a thread of its own does
            event.listen(self.engine, "connect", no_autocheckpoint)
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.engine.dispose()
                raise
        self._process = ProcessWriter(url, timeout_s=self.timeout_s, shown=self.url) if in_child else None
        self._writer: GroupCommitWriter[PreparedCheck] | None = (
            GroupCommitWriter(self.write_checks) if group_commit and not in_child else None
        )
        self._loop_commit: LoopGroupCommit[PreparedCheck] | None = (
            LoopGroupCommit(self._write_checks_unless_busy, self._writer)
            if on_loop and self._writer is not None
            else None
        )
        self._checkpointer = Checkpointer(str(self.engine.url.database)) if on_loop else None

    def close(self) -> None:
        """Commit what the writer holds, then release every pooled connection."""
        if self._writer is not None:
            self._writer.close()
        if self._process is not None:
            self._process.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        super().close()

    def migrate(self) -> None:
        """Bring the schema up to date with Alembic, in one transaction, one migrator at a time."""
        from alembic import command
        from alembic.util import CommandError

        with _migrating, self._connect("migrate its schema", bounded=False) as conn:
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
        """Write a check: its run, one row per record, and the owner versions it taught.

        With `group_commit`, the check joins the writer thread's next batch, and this returns once
        that batch is committed (within the store's deadline, or StoreTimeoutError).
        """
        prepared = self.prepare_check(result, [content_hash(record) for record in records], learned)
        if self._process is not None:
            self._process.write([prepared], wait_s=self._commit_wait(prepared))
            return
        writer = self._writer
        if writer is None:
            self.write_checks([prepared])
            return
        waited = self._commit_wait(prepared)
        try:
            writer.submit(prepared).result(timeout=waited)
        except FutureTimeout:
            raise self._not_kept(result, waited) from None

    async def arecord_check(
        self, result: CheckResult, records: Sequence[Any], learned: Mapping[Entity, datetime]
    ) -> None:
        """`record_check` for asyncio code: the loop awaits the commit (group commit), never blocks on it."""
        prepared = self.prepare_check(result, [content_hash(record) for record in records], learned)
        writer = self._writer
        if writer is None and self._process is None:
            await asyncio.to_thread(self.write_checks, [prepared])
            return
        waited = self._commit_wait(prepared)
        try:
            async with asyncio.timeout(waited):
                if self._process is not None:
                    await self._process.commit(prepared, wait_s=waited)
                elif self._loop_commit is not None:
                    await self._loop_commit.commit(prepared)
                else:
                    assert writer is not None  # noqa: S101 (no process: a writer thread)
                    await asyncio.wrap_future(writer.submit(prepared))
        except TimeoutError:
            raise self._not_kept(result, waited) from None

    def _commit_wait(self, prepared: PreparedCheck) -> float:
        """How long a caller waits for the group commit of its check: the write's own deadline, and slack."""
        return self.timeout_s + prepared.size * WRITE_S_PER_RECORD + 0.5

    def _not_kept(self, result: CheckResult, waited: float) -> StoreTimeoutError:
        return StoreTimeoutError(
            f"the lineage store {self.url} did not keep run {result.run_id} within {waited:.1f} s (its deadline); "
            "the store may be overloaded or unreachable: try again shortly"
        )

    def write_check(
        self, result: CheckResult, hashes: Sequence[str | None], learned: Mapping[Entity, datetime]
    ) -> None:
        """Write a check whose records are already reduced to their content hashes (`content_hash`), in order,
        in a transaction of its own (a large check, such as a table audited at once)."""
        self.write_checks([self.prepare_check(result, hashes, learned)])

    def prepare_check(
        self, result: CheckResult, hashes: Sequence[str | None], learned: Mapping[Entity, datetime]
    ) -> PreparedCheck:
        """The rows a check writes, ready for `write_checks`; `hashes` are its records' content hashes."""
        table = result.decisions
        run = RunSummary(
            result.run_id, result.pipeline, result.policy, result.checked_at,
            result.counts, result.duration_s, result.consumer,
        )  # fmt: skip
        run_row = _run_row(run)
        run_id, pipeline = run_row["run_id"], run_row["pipeline"]
        columns = (
            storable_column(table.ids), storable_column(table.objects), storable_column(table.keys),
            storable_column(table.sources), table.observed, table.updated, hashes, table.ages,
            table.actions, table.reasons,
        )  # fmt: skip
        rows = record_rows(run_id, columns, as_stored_time(self.dialect == "sqlite"))
        return PreparedCheck(
            run=run_row,
            records=rows,
            tallies=_tallies.rows(run_id, result.checked_at, pipeline, tally_check(table)),
            learned=learned,
            checked_at=result.checked_at,
            call=_feeds.consumer_call(result.consumer),
        )

    def write_run(self, run: RunSummary, tallies: Sequence[Tally], learned: Mapping[Entity, datetime]) -> None:
        """Write a check whose decisions are kept elsewhere (a Spark audit's output dataset): its run, its
        tallies and the owner versions it taught, in one transaction."""
        row = _run_row(run)
        prepared = PreparedCheck(
            run=row,
            records=[],
            tallies=_tallies.rows(row["run_id"], run.checked_at, row["pipeline"], tallies),
            learned=learned,
            checked_at=run.checked_at,
            call=_feeds.consumer_call(run.consumer),
        )
        self.write_checks([prepared])

    def write_checks(self, checks: Sequence[PreparedCheck]) -> None:
        """Write prepared checks in one transaction (the group commit's batch)."""
        self._write_checks(checks, lock_wait_s=self.timeout_s)

    def _write_checks_unless_busy(self, checks: Sequence[PreparedCheck]) -> bool:
        """`write_checks` on SQLite without waiting for the write lock: False, and nothing written, when it is held."""
        return self._write_checks(checks, lock_wait_s=0)

    def _write_checks(self, checks: Sequence[PreparedCheck], *, lock_wait_s: float) -> bool:
        size = sum(check.size for check in checks)
        with self._connect("record a check", extra_s=size * WRITE_S_PER_RECORD) as conn:
            if self.dialect == "postgresql" and size <= PIPELINE_ROWS:
                # Every statement of the batch in one round trip: its rollup rows (which every check of a
                # minute shares) stay locked for the commit only, not for ten round trips before it.
                with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
                    self._write_batch(conn, checks, copy=False)
            else:
                if self.dialect == "sqlite":
                    try:
                        self._take_write_lock(conn, wait_s=lock_wait_s)
                    except self._driver_error as exc:
                        if not lock_wait_s and _lock_busy(exc):  # nothing begun: the connection stays pooled
                            return False
                        raise
                self._write_batch(conn, checks)
            _link_calls(conn, checks)  # reads before it writes: outside the pipeline
        return True

    def _take_write_lock(self, conn: Connection, *, wait_s: float) -> None:
        """Begin `conn`'s SQLite transaction with the write lock (BEGIN IMMEDIATE), trying again every
        millisecond for up to `wait_s`; the driver's "database is locked" error if it stayed held.

        SQLite's own busy handler sleeps up to 100 ms between tries: the tail of every check that met
        another process's commit (several workers, a prune).
        """
        driver: Any = conn.connection.driver_connection
        deadline = time.monotonic() + wait_s
        driver.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    driver.execute("BEGIN IMMEDIATE")
                    return
                except self._driver_error as exc:
                    if not _lock_busy(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(_LOCK_RETRY_S)
        finally:
            driver.execute(f"PRAGMA busy_timeout = {round(self.timeout_s * 1000)}")  # the pool's own again

    def _write_batch(self, conn: Connection, checks: Sequence[PreparedCheck], *, copy: bool = True) -> None:
        rows = [row for check in checks for row in check.records]
        insert_rows(conn, runs, [check.run for check in checks])
        if rows:
            self._insert_records(conn, rows, copy=copy)
        tallies = [row for check in checks for row in check.tallies]
        if tallies:
            insert_rows(conn, run_tallies, tallies)
        _sightings.add(conn, (sighting for check in checks for sighting in check.sightings()))
        learned = _newest_learned(checks)
        if learned:
            self._advance_each(conn, learned, "owner_record")
        if tallies:  # last: every check of a minute adds to the same rollup rows, locked from here to the commit
            _rollups.add(conn, tallies)

    def _insert_records(self, conn: Connection, rows: list[tuple[Any, ...]], *, copy: bool = True) -> None:
        columns = ", ".join(f'"{c}"' for c in _RECORD_COLUMNS)
        if self.dialect == "postgresql" and copy:
            # The driver connection is the one SQLAlchemy's transaction runs on: the COPY joins it.
            with (
                conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
                cursor.copy(f"COPY run_records ({columns}) FROM STDIN") as copying,
            ):
                for row in rows:
                    copying.write_row(row)
        else:
            marks = ", ".join(("?" if self.dialect == "sqlite" else "%s") for _ in _RECORD_COLUMNS)
            conn.exec_driver_sql(f"INSERT INTO run_records ({columns}) VALUES ({marks})", rows)  # noqa: S608


def _link_calls(conn: Connection, checks: Sequence[PreparedCheck]) -> None:
    """Link each check that named a model call to it."""
    for check in checks:
        if check.call is not None:
            _feeds.insert_call(conn, check.run["run_id"], *check.call, linked_at=check.checked_at)


def _lock_busy(error: BaseException) -> bool:
    """True when a SQLite driver error says another connection holds the lock ("database is locked")."""
    return type(error).__name__ == "OperationalError" and "locked" in str(error)


def _run_row(run: RunSummary) -> dict[str, Any]:
    """The `runs` row of a check."""
    counts = run.counts
    return {
        "run_id": storable(run.run_id),
        "pipeline": storable(run.pipeline),
        "checked_at": run.checked_at,
        "policy_name": storable(run.policy.name),
        "policy_version": run.policy.version,
        "policy_hash": run.policy.hash,
        "verdict": verdict_of_counts(counts).value,
        "records": sum(counts.values()),
        "allowed": counts[Action.ALLOW],
        "warned": counts[Action.WARN],
        "blocked": counts[Action.BLOCK],
        "duration_ms": run.duration_s * 1000,
        "consumer": json_value(run.consumer) if run.consumer is not None else None,
    }


def record_rows(
    run_id: str, columns: tuple[Sequence[Any], ...], when: Callable[[datetime], Any]
) -> list[tuple[Any, ...]]:
    """The `run_records` rows of a check, from its decision columns (and the records' content hashes).

    `when` is how the dialect stores a timestamp (`as_stored_time`).
    """
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


def _newest_learned(checks: Sequence[PreparedCheck]) -> dict[Entity, tuple[datetime, datetime]]:
    """The newest owner version the checks taught per entity, with the check time it was learned at."""
    newest: dict[Entity, tuple[datetime, datetime]] = {}
    for check in checks:
        for entity, version in check.learned.items():
            known = newest.get(entity)
            if known is None or version > known[0]:
                newest[entity] = (version, check.checked_at)
    return newest


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
