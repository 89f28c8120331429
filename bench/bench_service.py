"""The service at production speed (issue 11): `freshguard serve` driven by wrk on this machine.

Starts the real server (`freshguard serve`, granian) on a loopback port with a temporary SQLite
store or a PostgreSQL database made for the run (and dropped after), then measures, against the
same server: GET /healthz and POST /v1/check (20 fresh records per check, bench/check_request.lua)
with 8 connections, and both with one connection; with --workers above 1, 8 connections only.
Every measurement is repeated (--repeat) after a warm-up; the round with the best check rate is
reported whole, with every round listed. After each check measurement the store must hold one
run per 2xx wrk counted (at most one more per connection: requests in flight when wrk stops),
and no record may be blocked: otherwise the bench stops, since it would be measuring errors.

Run: python bench/bench_service.py [--store sqlite|postgresql|both] [--duration S] [--workers 1,2,4]
Needs wrk (Debian: apt-get install wrk) and, for PostgreSQL, a server at --postgres (trust auth).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa

HERE = Path(__file__).parent
POLICY = HERE.parent / "policies" / "support-assistant.yaml"
LUA = HERE / "check_request.lua"
FRESHGUARD = str(Path(sys.executable).parent / "freshguard")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
CONNECTIONS = 8
#: More settings for the servers the bench starts (from its options).
SERVER_ENV: dict[str, str] = {}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


class BenchError(Exception):
    """The bench cannot measure, or measured something other than successful checks."""


@dataclass(frozen=True)
class Measured:
    """One wrk run: completed requests, the rate, latency percentiles and anything that went wrong."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    not_2xx: int
    socket_errors: int


@dataclass(frozen=True)
class Pair:
    """GET /healthz and POST /v1/check measured back to back against the same server."""

    health: Measured
    check: Measured


@dataclass(frozen=True)
class Round:
    """One round against one server: 8 connections, then (one worker only) one connection."""

    loaded: Pair
    single: Pair | None


def _millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> Measured:
    """The figures of `wrk --latency` output."""

    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    done, rate, p50, p99 = (find(p) for p in (r"^\s*(\d+) requests in", r"^Requests/sec:\s*([\d.]+)",
                                               r"^\s*50%\s+(\S+)", r"^\s*99%\s+(\S+)"))  # fmt: skip
    if done is None or rate is None or p50 is None or p99 is None:
        raise BenchError(f"wrk printed no figures:\n{output}")
    errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    not_2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    return Measured(
        requests=int(done[1]),
        rate=float(rate[1]),
        p50_ms=_millis(p50[1]),
        p99_ms=_millis(p99[1]),
        not_2xx=int(not_2xx[1]) if not_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def wrk(url: str, *, connections: int, seconds: float, script_args: Sequence[str] = ()) -> Measured:
    """wrk against `url` (POST /v1/check with fresh records when `script_args` are given)."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    if script_args:
        command[1:1] = ["-s", str(LUA)]
        command += ["--", *script_args]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603 (our argv)
    return parse_wrk(output)


class Store:
    """A lineage store made for the bench: its URL for the server, and its runs counted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None

    def counts(self) -> tuple[int, int]:
        """Runs kept, and records blocked in them."""
        if self._engine is None:
            self._engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        with self._engine.connect() as connection:
            row = connection.execute(sa.text("SELECT count(*), coalesce(sum(blocked), 0) FROM runs")).one()
        return int(row[0]), int(row[1])

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="freshguard-bench-") as folder:
        store = Store(f"sqlite:///{folder}/lineage.db")
        try:
            yield store
        finally:
            store.close()


@contextmanager
def postgresql_store(server: str) -> Iterator[Store]:
    """A fresh database on `server` (postgresql+psycopg://user@host:port), dropped afterwards."""
    name = f"freshguard_bench_{os.getpid()}"
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # our own name, no input
    store = Store(f"{server}/{name}")
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(store: Store, workers: int, log: Path) -> Iterator[str]:
    """`freshguard serve` on a free loopback port until the block ends; yields its base URL once ready."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHGUARD_")}
    env["STRIPE_SIGNING_KEY"] = "bench-stripe-key"
    env |= SERVER_ENV
    command = [FRESHGUARD, "serve", "--policy", str(POLICY), "--database", store.url, "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    with running(command, env, port, log) as base:
        yield base


@contextmanager
def running(command: Sequence[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """A server started with `command` until the block ends; yields its base URL once `/readyz` answers 200."""
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603 (our argv)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{command[0]} did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:  # noqa: S310 (our own loopback URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Driver:
    """Drives one server; every check measurement is held to the store's count of runs."""

    def __init__(self, base: str, store: Store, seconds: float) -> None:
        self.base, self.store, self.seconds = base, store, seconds
        self._runs = 0

    def health(self, connections: int) -> Measured:
        return self._ok(wrk(f"{self.base}/healthz", connections=connections, seconds=self.seconds))

    def check(self, connections: int, seconds: float | None = None) -> Measured:
        before, _ = self.store.counts()
        self._runs += 1
        prefix = f"p{os.getpid()}r{self._runs}"
        measured = self._ok(wrk(f"{self.base}/v1/check", connections=connections,
                                seconds=seconds or self.seconds, script_args=[prefix]))  # fmt: skip
        time.sleep(0.5)  # requests in flight when wrk stopped may still commit
        after, blocked = self.store.counts()
        kept = after - before
        if not measured.requests <= kept <= measured.requests + connections:
            raise BenchError(f"wrk counted {measured.requests} checks answered 2xx, the store kept {kept} runs")
        if blocked:
            raise BenchError(f"{blocked} records were blocked: the bench's records are not all fresh and valid")
        return measured

    @staticmethod
    def _ok(measured: Measured) -> Measured:
        if measured.not_2xx or measured.socket_errors:
            raise BenchError(f"{measured.not_2xx} answers were not 2xx, {measured.socket_errors} socket errors")
        return measured


def measure(store: Store, workers: int, *, seconds: float, warmup: float, repeat: int, log: Path) -> list[Round]:
    """`repeat` rounds against one server with `workers` workers on `store`."""
    rounds = []
    with serving(store, workers, log) as base:
        driver = Driver(base, store, seconds)
        driver.check(CONNECTIONS, seconds=warmup)
        wrk(f"{base}/healthz", connections=CONNECTIONS, seconds=warmup)
        for _ in range(repeat):
            loaded = Pair(driver.health(CONNECTIONS), driver.check(CONNECTIONS))
            rounds.append(Round(loaded, Pair(driver.health(1), driver.check(1)) if workers == 1 else None))
    return rounds


def _line(what: str, measured: Measured) -> str:
    return (f"  {what:<18} {measured.rate:8,.0f} req/s  p50 {measured.p50_ms:6.2f} ms  "
            f"p99 {measured.p99_ms:6.2f} ms")  # fmt: skip


def report(label: str, rounds: list[Round]) -> None:
    """The round with the best check rate, whole; the one-connection pair with the best check p50; every rate."""
    best = max(rounds, key=lambda r: r.loaded.check.rate).loaded
    print(f"{label}: best of {len(rounds)} rounds")
    print(_line("GET /healthz c8", best.health))
    print(_line("POST /v1/check c8", best.check) + f"  = {best.check.rate / best.health.rate:.2f}x healthz")
    singles = [r.single for r in rounds if r.single is not None]
    if singles:
        one = min(singles, key=lambda pair: pair.check.p50_ms)
        print(_line("GET /healthz c1", one.health))
        print(_line("POST /v1/check c1", one.check))
    rates = ", ".join(f"{r.loaded.check.rate:,.0f} / {r.loaded.health.rate:,.0f}" for r in rounds)
    print(f"  every round, check / healthz req/s (c8): {rates}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per server (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per server; the best is reported (default 3)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated (default 1,2,4)")
    parser.add_argument(
        "--writer",
        choices=("process", "threads"),
        default="process",
        help="where the servers commit lineage: a writer process (the default) or their own threads",
    )
    parser.add_argument("--postgres", default=POSTGRES, help=f"PostgreSQL server, no database (default {POSTGRES})")
    args = parser.parse_args()
    SERVER_ENV["FRESHGUARD_WRITER_PROCESS"] = str(args.writer == "process").lower()
    if shutil.which("wrk") is None:
        sys.exit("bench_service needs wrk: apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)")
    workers = [int(n) for n in args.workers.split(",")]
    stores = ("sqlite", "postgresql") if args.store == "both" else (args.store,)
    with tempfile.TemporaryDirectory(prefix="freshguard-bench-logs-") as logs:
        for kind in stores:
            for count in workers:
                opened = sqlite_store() if kind == "sqlite" else postgresql_store(args.postgres)
                label = f"{kind}, {count} worker{'s' if count > 1 else ''}"
                try:
                    with opened as store:
                        rounds = measure(store, count, seconds=args.duration, warmup=args.warmup,
                                         repeat=args.repeat, log=Path(logs) / "serve.log")  # fmt: skip
                except BenchError as error:
                    sys.exit(f"{label}: {error}")
                report(label, rounds)


if __name__ == "__main__":
    main()
