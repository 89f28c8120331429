"""The service under faults, served as users run it (`freshguard serve`), with real dependencies failing:

- PostgreSQL behind a TCP proxy of the tests' own that stalls (stops forwarding) or goes away;
- a SQLite file made read-only under load, the server running as an ordinary user (not root);
- clients that trickle their request head or body;
- a worker killed with SIGKILL mid-load.

Every check the service acknowledged (200) must be readable afterwards through GET /v1/runs/{id}.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy.engine import make_url

from tests.api.conftest import SAMPLE_KEY
from tests.conftest import EXAMPLE_POLICY
from tests.faults import TcpProxy, proxied
from tests.serving import Served, free_port, freshguard_serve, serving

#: Each store operation's deadline in these tests (seconds): faults must answer within it, plus slack.
DEADLINE_S = 1.0
SLACK_S = 1.5
Fresh = Callable[..., dict[str, Any]]


def _env(**more: str) -> dict[str, str]:
    return {
        **os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_STORE_TIMEOUT_S": str(DEADLINE_S),
        "FRESHGUARD_WATCH_EVERY_S": "0", **more,
    }  # fmt: skip


@pytest.fixture
def checks_for(fresh: Fresh) -> Iterator[Callable[[str], Checks]]:
    """Makes a `Checks` for a service's base URL; closes their connections after the test."""
    made: list[Checks] = []

    def make(base: str) -> Checks:
        made.append(Checks(base, fresh))
        return made[-1]

    yield make
    for checks in made:
        checks.http.close()


@contextmanager
def _served(tmp_path: Path, database: str, *extra: str, env: dict[str, str] | None = None,
            prefix: tuple[str, ...] = ()) -> Iterator[Served]:  # fmt: skip
    port = free_port()
    command = [*prefix, *freshguard_serve("--policy", str(EXAMPLE_POLICY), "--database", database, *extra, port=port)]
    with serving(command, port=port, env=env or _env(), log=tmp_path / "serve.log", ready_within_s=60) as served:
        yield served


class Checks:
    """Sends checks of fresh records, remembering every run the service acknowledged."""

    def __init__(self, base: str, fresh: Fresh) -> None:
        self.http = httpx2.Client(base_url=base, timeout=30)
        self.fresh = fresh
        self.acknowledged: list[str] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._count = 0

    def send(self) -> httpx2.Response:
        with self._lock:
            self._count += 1
            n = self._count
        records = [self.fresh(id=f"r-{n}-{i}", key=f"C-{n}-{i}") for i in range(5)]
        response = self.http.post("/v1/check", json={"pipeline": "faults", "records": records})
        with self._lock:
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                self.acknowledged.append(response.json()["run_id"])
        return response

    def until_ok(self, within_s: float) -> float:
        """Seconds until a check is acknowledged again (fails the test after `within_s`)."""
        started = time.monotonic()
        while time.monotonic() - started < within_s:
            if self.send().status_code == 200:
                return time.monotonic() - started
            time.sleep(0.1)
        pytest.fail(f"the service did not recover within {within_s} s: {self.statuses[-10:]}")

    def all_readable(self) -> None:
        missing = [run for run in self.acknowledged if self.http.get(f"/v1/runs/{run}").status_code != 200]
        assert missing == [], f"{len(missing)} of {len(self.acknowledged)} acknowledged checks are not in the store"


def _unavailable_within_deadline(checks: Checks) -> None:
    started = time.monotonic()
    answer = checks.send()
    took = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "urn:freshguard:problem:store-unavailable"
    assert answer.headers["retry-after"] == "1"
    assert took < DEADLINE_S * 2 + SLACK_S, f"a check took {took:.1f} s to answer 503"
    started = time.monotonic()
    ready = checks.http.get("/readyz")
    assert ready.status_code == 503
    assert time.monotonic() - started < DEADLINE_S + SLACK_S


@contextmanager
def _behind_a_proxy(
    tmp_path: Path, empty_postgres: str, checks_for: Callable[[str], Checks]
) -> Iterator[tuple[TcpProxy, Checks]]:
    """The service on PostgreSQL through a `TcpProxy`, after ten checks it acknowledged."""
    database = make_url(empty_postgres)
    with proxied((database.host or "127.0.0.1", database.port or 5432)) as proxy:
        through = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with _served(tmp_path, through) as served:
            checks = checks_for(served.base)
            for _ in range(10):
                assert checks.send().status_code == 200
            yield proxy, checks


@pytest.mark.postgres
def test_a_stalled_database_answers_503_within_the_deadline_and_the_service_recovers(
    tmp_path: Path, empty_postgres: str, checks_for: Callable[[str], Checks]
) -> None:
    with _behind_a_proxy(tmp_path, empty_postgres, checks_for) as (proxy, checks):
        proxy.stall()
        _unavailable_within_deadline(checks)
        _unavailable_within_deadline(checks)
        proxy.restore()

        assert checks.until_ok(within_s=15) < 15
        for _ in range(10):
            assert checks.send().status_code == 200
        assert checks.http.get("/readyz").status_code == 200
        checks.all_readable()


@pytest.mark.postgres
def test_a_database_outage_answers_503_at_once_and_the_service_recovers(
    tmp_path: Path, empty_postgres: str, checks_for: Callable[[str], Checks]
) -> None:
    with _behind_a_proxy(tmp_path, empty_postgres, checks_for) as (proxy, checks):
        proxy.outage()
        _unavailable_within_deadline(checks)
        proxy.restore()

        assert checks.until_ok(within_s=10) < 10
        checks.all_readable()


def _without_root_powers() -> tuple[str, ...]:
    """A command prefix under which file permissions bind the server as they bind an ordinary user.

    Root writes any file, read-only or not: the server drops the capabilities that allow it
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) for itself and its workers. (Switching to `nobody`
    is not enough here: the interpreter may live under /root, which only root may enter.)
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("the tests run as root and need setpriv (util-linux) to serve without root's powers")
    drop = "-dac_override,-dac_read_search"
    return (setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}")


def test_a_sqlite_file_made_read_only_under_load_fails_checks_cleanly_and_recovers(
    tmp_path: Path, checks_for: Callable[[str], Checks]
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    database = folder / "lineage.db"
    with _served(tmp_path, f"sqlite:///{database}", prefix=_without_root_powers()) as served:
        checks = checks_for(served.base)
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                checks.send()

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(1)
        writable = database.stat().st_mode
        for path in folder.iterdir():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        folder.chmod(0o555)
        time.sleep(3)
        folder.chmod(0o755)
        for path in folder.iterdir():
            path.chmod(writable)
        time.sleep(1)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

        # Connections opened before the spell keep their file open for writing, so many checks pass through it;
        # those that fail, fail cleanly. (test_a_sqlite_store_locked_... makes every write fail, surely.)
        assert set(checks.statuses) <= {200, 503}, sorted(set(checks.statuses))
        assert checks.until_ok(within_s=5) < 5
        after = [checks.send().status_code for _ in range(20)]
        assert after == [200] * 20
        assert checks.http.get("/readyz").status_code == 200
        checks.all_readable()


def test_a_sqlite_store_locked_by_another_process_answers_503_within_the_deadline_and_recovers(
    tmp_path: Path, checks_for: Callable[[str], Checks]
) -> None:
    """Another process (a backup, a migration) holds the write lock: checks cannot be kept, so they are not answered."""
    database = tmp_path / "lineage.db"
    with _served(tmp_path, f"sqlite:///{database}") as served:
        checks = checks_for(served.base)
        for _ in range(5):
            assert checks.send().status_code == 200
        holder = sqlite3.connect(database, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            _unavailable_within_deadline(checks)
            _unavailable_within_deadline(checks)
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        assert checks.until_ok(within_s=5) < 5
        assert [checks.send().status_code for _ in range(10)] == [200] * 10
        assert checks.http.get("/readyz").status_code == 200
        checks.all_readable()


def test_a_check_that_meets_a_briefly_held_sqlite_lock_waits_for_it_off_the_event_loop(
    tmp_path: Path, checks_for: Callable[[str], Checks]
) -> None:
    """Checks commit on the event loop only while the write lock is free: one that finds it held waits
    in the writer thread (and is kept once the lock is free), and the loop goes on answering meanwhile."""
    database = tmp_path / "lineage.db"
    with _served(tmp_path, f"sqlite:///{database}") as served:
        checks = checks_for(served.base)
        assert checks.send().status_code == 200
        holder = sqlite3.connect(database, isolation_level=None)
        answered: list[httpx2.Response] = []
        try:
            holder.execute("BEGIN IMMEDIATE")  # another writer (a prune, the CLI) holds the lock for a moment
            waiting = threading.Thread(target=lambda: answered.append(checks.send()))
            waiting.start()
            time.sleep(DEADLINE_S / 4)
            assert waiting.is_alive(), "the check did not wait for the lock"
            started = time.monotonic()
            assert checks.http.get("/healthz").status_code == 200
            assert time.monotonic() - started < 0.2, "the event loop waited for the lock"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        waiting.join(timeout=DEADLINE_S + SLACK_S)
        assert [response.status_code for response in answered] == [200]
        checks.all_readable()


def test_clients_that_trickle_their_head_or_body_are_dropped(tmp_path: Path) -> None:
    env = _env(FRESHGUARD_BODY_TIMEOUT_S="2")
    with _served(tmp_path, f"sqlite:///{tmp_path / 'l.db'}", "--head-timeout", "2", env=env) as served:
        port = int(served.base.rsplit(":", 1)[1])
        heads = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        bodies = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        for sock in bodies:
            sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{")  # fmt: skip
        started = time.monotonic()
        answers: dict[int, bytes] = {}
        closed: set[int] = set()
        while time.monotonic() - started < 8 and len(closed) < len(heads) + len(bodies):
            for index, sock in enumerate(heads + bodies):
                if index in closed:
                    continue
                try:
                    sock.settimeout(0.01)
                    if index < len(heads):
                        sock.sendall(b"G" if time.monotonic() - started < 0.1 else b"E")
                    got = sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    closed.add(index)
                    continue
                answers[index] = answers.get(index, b"") + got
                if not got or index < len(heads):
                    closed.add(index)
            assert httpx2.get(f"{served.base}/healthz", timeout=2).status_code == 200  # the service stays responsive
            time.sleep(0.2)
        took = time.monotonic() - started

        assert len(closed) == len(heads) + len(bodies), f"{len(closed)} of 50 trickling connections closed in 8 s"
        assert took < 6
        for index in range(len(heads), len(heads) + len(bodies)):
            assert answers.get(index, b"").startswith(b"HTTP/1.1 408"), answers.get(index, b"")[:200]
        for sock in heads + bodies:
            sock.close()


@pytest.mark.postgres
def test_a_worker_killed_mid_load_loses_no_acknowledged_check(
    tmp_path: Path, empty_postgres: str, checks_for: Callable[[str], Checks]
) -> None:
    with _served(tmp_path, empty_postgres, "--workers", "2") as served:
        checks = checks_for(served.base)
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                with contextlib.suppress(httpx2.TransportError):  # the connection the killed worker held
                    checks.send()

        workers = [threading.Thread(target=load) for _ in range(6)]
        for worker in workers:
            worker.start()
        time.sleep(2)
        children = _children(served.process.pid)
        assert len(children) >= 2, children
        os.kill(children[0], signal.SIGKILL)
        time.sleep(3)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

        assert len(checks.acknowledged) > 20
        checks.until_ok(within_s=10)
        checks.all_readable()


def _children(pid: int) -> list[int]:
    """The process ids of `pid`'s child processes (the server's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)
