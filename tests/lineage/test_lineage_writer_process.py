"""The lineage writer in a process of its own (`writer_process=True`, as the service opens its store): checks are
kept by the child, a child that died or hangs is replaced, and a child never outlives its parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard import Guard, Policy, StoreUnavailableError
from guard.lineage.store import LineageStore
from tests.conftest import RecordFactory
from tests.integrations.conftest import run_async
from tests.lineage.lineage_helpers import concurrently, scalar, separate_checks


@pytest.fixture
def process_store(store_url: str) -> Iterator[LineageStore]:
    """A store whose group commits are written by a child process."""
    opened = LineageStore(store_url, group_commit=True, writer_process=True, timeout_s=1.0)
    yield opened
    opened.close()


def _child_pid(store: LineageStore) -> int:
    child = store._process._child if store._process is not None else None
    assert child is not None, "the store has no writer process"
    return child.pid


def test_checks_are_committed_by_the_child_process_not_the_callers(
    process_store: LineageStore, minimal_policy: Policy, record: RecordFactory, store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def not_here(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a batch was written in the caller's process")

    monkeypatch.setattr(LineageStore, "write_checks", not_here)
    with Guard(minimal_policy, store=process_store) as guard:
        run_ids, _ = concurrently(guard, separate_checks(record, 12))
        guard.check([record(id="sync-1", key="C-sync")], pipeline="sync")
    assert _child_pid(process_store) != os.getpid()
    assert scalar(store_url, "SELECT count(*) FROM runs WHERE pipeline = 'concurrent'") == 12
    assert scalar(store_url, "SELECT count(*) FROM runs WHERE pipeline = 'sync'") == 1
    assert scalar(store_url, "SELECT count(*) FROM run_records") == 61
    assert {run["run_id"] for run in process_store.list_runs(pipeline="concurrent")} == set(run_ids)


def test_a_writer_process_that_died_is_replaced_for_the_next_check(
    process_store: LineageStore, minimal_policy: Policy, record: RecordFactory, store_url: str
) -> None:
    with Guard(minimal_policy, store=process_store) as guard:
        guard.check([record(id="before")], pipeline="p")
        first = _child_pid(process_store)
        os.kill(first, signal.SIGKILL)
        _wait_gone(first)
        guard.check([record(id="after")], pipeline="p")
    assert _child_pid(process_store) != first
    assert scalar(store_url, "SELECT count(*) FROM run_records WHERE record_id IN ('before', 'after')") == 2


def test_a_writer_process_that_died_is_replaced_for_the_event_loops_next_check(
    process_store: LineageStore, minimal_policy: Policy, record: RecordFactory, store_url: str
) -> None:
    async def main(guard: Guard) -> int:
        await guard.acheck([record(id="before")], pipeline="p")
        first = _child_pid(process_store)
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.5)  # the loop reads the end of the channel
        await guard.acheck([record(id="after")], pipeline="p")
        return first

    with Guard(minimal_policy, store=process_store) as guard:
        first = run_async(lambda: main(guard))
    assert _child_pid(process_store) != first
    assert scalar(store_url, "SELECT count(*) FROM run_records WHERE record_id IN ('before', 'after')") == 2


def test_a_writer_process_that_hangs_fails_the_check_within_its_deadline_and_is_replaced(
    process_store: LineageStore, minimal_policy: Policy, record: RecordFactory, store_url: str
) -> None:
    with Guard(minimal_policy, store=process_store) as guard:
        guard.check([record(id="before")], pipeline="p")
        stuck = _child_pid(process_store)
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="did not"):
            guard.check([record(id="lost")], pipeline="p")
        assert time.monotonic() - started < 4, "the check waited past its deadline (1 s and slack)"
        _wait_gone(stuck)
        guard.check([record(id="after")], pipeline="p")
    assert scalar(store_url, "SELECT count(*) FROM runs") == 2
    assert scalar(store_url, "SELECT count(*) FROM run_records WHERE record_id = 'lost'") == 0


def test_a_writer_process_that_hangs_fails_the_event_loops_checks_within_their_deadline_and_is_replaced(
    process_store: LineageStore, minimal_policy: Policy, record: RecordFactory, store_url: str
) -> None:
    async def main(guard: Guard) -> tuple[int, float]:
        await guard.acheck([record(id="before")], pipeline="p")
        stuck = _child_pid(process_store)
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()
        lost = await asyncio.gather(
            *(guard.acheck([record(id=f"lost-{n}")], pipeline="p") for n in range(3)), return_exceptions=True
        )
        took = time.monotonic() - started
        assert all(isinstance(error, StoreUnavailableError) for error in lost), lost
        await guard.acheck([record(id="after")], pipeline="p")
        return stuck, took

    with Guard(minimal_policy, store=process_store) as guard:
        stuck, took = run_async(lambda: main(guard))
    assert took < 4, "the checks waited past their deadline (1 s and slack)"
    _wait_gone(stuck)
    assert scalar(store_url, "SELECT count(*) FROM runs") == 2
    assert scalar(store_url, "SELECT count(*) FROM run_records WHERE record_id LIKE 'lost-%'") == 0


def test_the_writer_process_ends_with_its_parent(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):  # the parent migrates: a file of its own
        store_url = f"sqlite:///{tmp_path / 'parent.db'}"
    with subprocess.Popen([sys.executable, "-c", _PARENT, store_url], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
    _wait_gone(child)


_PARENT = """
import sys, time
from guard.lineage.store import LineageStore
store = LineageStore(sys.argv[1], group_commit=True, writer_process=True)
print(store._process._child.pid, flush=True)
time.sleep(60)
"""


def _wait_gone(pid: int, within_s: float = 10) -> None:
    """Wait until `pid` has exited (gone, or a zombie nobody reaped)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
        except FileNotFoundError:
            return
        if state == "Z" and threads <= 1:  # every thread gone, its sockets closed
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still running after {within_s} s")


def test_the_writer_keeps_a_sqlite_wal_short_under_a_stream_of_checks(
    minimal_policy: Policy, record: RecordFactory, tmp_path: Path
) -> None:
    """The writer checkpoints between its commits, so every frame gets copied and the WAL starts over (a checkpoint
    racing the commits from another thread never finished: the WAL grew by gigabytes a minute under load)."""
    store = LineageStore(f"sqlite:///{tmp_path / 'lineage.db'}", group_commit=True, writer_process=True)
    wal = tmp_path / "lineage.db-wal"
    largest = 0
    try:
        with Guard(minimal_policy, store=store) as guard:
            for round_ in range(30):
                batches = [[record(id=f"{round_}-{n}-{i}", key=f"C-{round_}-{n}-{i}", content="x" * 2000)
                            for i in range(20)] for n in range(10)]  # fmt: skip
                concurrently(guard, batches)
                largest = max(largest, wal.stat().st_size)
                time.sleep(0.06)
    finally:
        store.close()
    written = 30 * 10 * 20 * 2000
    assert largest < written / 4, f"the WAL reached {largest:,} bytes for {written:,} bytes of records"
