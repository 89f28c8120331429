"""Group commit as asyncio callers meet it: concurrent checks share transactions, and a SQLite store's WAL is
checkpointed by a thread of its own while its commits (on the event loop) never checkpoint."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from guard import Guard, Policy
from guard.lineage import _base, _checkpoints
from guard.lineage.store import LineageStore
from tests.conftest import RecordFactory
from tests.lineage.lineage_helpers import concurrently, scalar, separate_checks


@pytest.fixture
def committing_guard(minimal_policy: Policy, store_url: str) -> Iterator[Guard]:
    """A guard whose store commits with group commit, as the service's does."""
    store = LineageStore(store_url, group_commit=True)
    with Guard(minimal_policy, store=store) as opened:
        yield opened
    store.close()


def test_concurrent_asyncio_checks_are_all_kept(committing_guard: Guard, record: RecordFactory, store_url: str) -> None:
    run_ids, _ = concurrently(committing_guard, separate_checks(record, 12))
    assert scalar(store_url, "SELECT count(*) FROM runs WHERE pipeline = 'concurrent'") == 12
    assert scalar(store_url, "SELECT count(*) FROM run_records") == 60
    store = committing_guard.store
    assert store is not None
    assert {run["run_id"] for run in store.list_runs(pipeline="concurrent")} == set(run_ids)


def test_checks_that_reach_the_loop_together_share_one_sqlite_transaction_on_the_loop(
    minimal_policy: Policy, record: RecordFactory, tmp_path: Path
) -> None:
    store = LineageStore(f"sqlite:///{tmp_path / 'lineage.db'}", group_commit=True)
    commits: list[int] = []  # the thread each transaction committed on
    sa.event.listen(store.engine, "commit", lambda _conn: commits.append(threading.get_ident()))
    try:
        with Guard(minimal_policy, store=store) as guard:
            _, loop_thread = concurrently(guard, separate_checks(record, 8))
    finally:
        store.close()
    assert len(commits) == 1, f"8 concurrent checks took {len(commits)} transactions"
    assert commits == [loop_thread], "the batch was not committed on the event loop's thread"


def test_a_sqlite_store_checkpoints_its_wal_in_a_thread_of_its_own(
    minimal_policy: Policy, record: RecordFactory, tmp_path: Path
) -> None:
    database = tmp_path / "lineage.db"
    store = LineageStore(f"sqlite:///{database}", group_commit=True)
    try:
        with store.engine.connect() as connection:  # the store's own connections leave checkpoints to the thread
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        before = database.stat().st_size
        with Guard(minimal_policy, store=store) as guard:
            concurrently(guard, separate_checks(record, 40))
            deadline = time.monotonic() + 5
            while database.stat().st_size == before and time.monotonic() < deadline:
                time.sleep(0.1)
        assert database.stat().st_size > before, "no checkpoint copied the WAL into the database file"
    finally:
        store.close()


def test_a_long_wal_is_started_over_and_cut_back_by_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passive checkpoint copies frames but never starts the WAL over: `checkpoint` restarts one that grew long,
    and the store's connections cut the file back to JOURNAL_SIZE_LIMIT when it is started over."""
    monkeypatch.setattr(_checkpoints, "RESTART_PAGES", 100)
    monkeypatch.setattr(_base, "JOURNAL_SIZE_LIMIT", 1024 * 1024)
    store = LineageStore(f"sqlite:///{tmp_path / 'lineage.db'}")
    wal = tmp_path / "lineage.db-wal"
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE filler (n INTEGER, pad TEXT)")
        with store.engine.begin() as conn:  # about 2,000 pages of WAL
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
            conn.exec_driver_sql("INSERT INTO filler VALUES (?, ?)", [(n, "x" * 4000) for n in range(2000)])
        grown = wal.stat().st_size
        assert grown > 4 * 1024 * 1024
        checkpointer = sqlite3.connect(tmp_path / "lineage.db", timeout=0)
        try:
            _checkpoints.checkpoint(checkpointer)
        finally:
            checkpointer.close()
        with store.engine.begin() as conn:  # the next writer starts the WAL over, and cuts the file back
            conn.exec_driver_sql("INSERT INTO filler VALUES (1, 'y')")
        with store.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]
        assert pages < 10, f"the WAL was not started over: {pages} pages in it"
        assert wal.stat().st_size <= 1024 * 1024, "the WAL file kept its length after it was started over"
    finally:
        store.close()
