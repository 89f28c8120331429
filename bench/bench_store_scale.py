"""A lineage store after months of checks (issue 15): health, /metrics and the dashboard stay fast; pruning
does not stall checks; how big the store is per million record rows.

Seeds 30 days of history (RUNS runs of 20 records each, five integration points, about 2% of records
blocked, heartbeats from two writers per SLA every minute) through the bulk paths (SQLite: executemany,
one transaction per 50,000 runs; PostgreSQL: COPY), with the rollups, sightings and newest syncs the
store keeps built by the store's own code. Then, against a real `freshguard serve` on loopback:
p50/p95/max of GET /v1/health, GET /metrics and the dashboard's overview (GET /), one request at a
time; then check latency (POST /v1/check, 20 records, one at a time) while `freshguard store prune
--older-than 20d` removes the oldest 10 days in another process.

    flock /tmp/bench.lock python bench/bench_store_scale.py --runs 100000 --runs 300000 --stores sqlite postgresql

Seeded stores are kept under --folder (SQLite) or as databases freshguard_scale_<runs> (PostgreSQL) and
reused while their run count matches; --fresh seeds again. The prune changes them: it runs last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import Store, serving

from guard._ids import new_run_id
from guard.lineage import _rollups, _sightings
from guard.lineage._base import _sqlite_time
from guard.lineage.store import _RECORD_COLUMNS, LineageStore
from guard.tallies import AGE_BOUNDS_S, Tally

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "support-assistant.yaml"
FRESHGUARD = str(Path(sys.executable).parent / "freshguard")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
DAYS = 30
PER_RUN = 20
CHUNK_RUNS = 50_000
#: (source, object, records per run): 20 records per run over five integration points.
POINTS = (("sap", "customer", 8), ("salesforce", "customer", 4), ("sap", "order", 4), ("stripe", "invoice", 2),
          ("warehouse", "customer", 2))  # fmt: skip
WRITERS = (("sap", "customer"), ("sap", "order"), ("stripe", "invoice"), ("warehouse", "product"))
_TALLY_COLUMNS = ("run_id", "checked_at", "pipeline", "source", "object", "records", "allowed", "warned", "blocked",
                  "reasons", "age_buckets", "age_max_s", "age_sum_s")  # fmt: skip
_RUN_COLUMNS = ("run_id", "pipeline", "checked_at", "policy_name", "policy_version", "policy_hash", "verdict",
                "records", "allowed", "warned", "blocked", "duration_ms", "consumer")  # fmt: skip


class Seeder:
    """Writes RUNS runs over 30 days ending `now`, chunk by chunk, through the dialect's bulk path."""

    def __init__(self, store: LineageStore, runs: int, now: datetime) -> None:
        self.store, self.runs, self.now = store, runs, now
        self.sqlite = store.dialect == "sqlite"
        self.step = timedelta(days=DAYS) / runs

    def seed(self) -> None:
        for start in range(0, self.runs, CHUNK_RUNS):
            self._chunk(start, min(start + CHUNK_RUNS, self.runs))
        self._heartbeats()

    def _chunk(self, first: int, last: int) -> None:
        run_rows, record_rows, tally_rows, tallies, seen = [], [], [], [], []
        stamp = _sqlite_time if self.sqlite else (lambda moment: moment)
        for n in range(first, last):
            at = self.now - timedelta(days=DAYS) + self.step * n
            run_id = new_run_id(int(at.timestamp() * 1e9))  # as the guard makes them: of their time
            blocked_at = 3 if n % 5 == 0 else -1  # one record in five runs is stale: 1% blocked
            position = 0
            blocked = 0
            for source, obj, count in POINTS:
                tally = Tally(source, obj, checked_at=at)
                for _ in range(count):
                    age = float((n * 7 + position * 13) % 900 + (4000 if position == blocked_at else 0))
                    action, reasons = ("block", "STALE") if position == blocked_at else ("allow", "")
                    key = f"{obj[0].upper()}-{(n * 3 + position) % 20_000}"
                    record_rows.append((run_id, position, f"r{n}-{position}", obj, key, source, stamp(at - timedelta(
                        seconds=age)), None, None, age, action, reasons, None))  # fmt: skip
                    seen.append(((source, obj, key), at))
                    tally.records += 1
                    if action == "block":
                        tally.blocked += 1
                        tally.reasons["STALE"] = tally.reasons.get("STALE", 0) + 1
                        blocked += 1
                    else:
                        tally.allowed += 1
                    tally.age_buckets[_bucket(age)] += 1
                    tally.age_sum_s += age
                    tally.age_max_s = age if tally.age_max_s is None else max(tally.age_max_s, age)
                    position += 1
                row = {"run_id": run_id, "checked_at": at, "pipeline": "rag", "source": source, "object": obj,
                       "records": tally.records, "allowed": tally.allowed, "warned": 0, "blocked": tally.blocked,
                       "reasons": tally.reasons, "age_buckets": tally.age_buckets, "age_max_s": tally.age_max_s,
                       "age_sum_s": tally.age_sum_s}  # fmt: skip
                tallies.append(row)
                tally_rows.append(row)
            verdict = "blocked" if blocked else "allowed"
            run_rows.append((run_id, "rag", stamp(at), "support-assistant", 1, "0" * 64, verdict, PER_RUN,
                             PER_RUN - blocked, 0, blocked, 1.0, None))  # fmt: skip
        with self.store.engine.begin() as conn:
            if self.sqlite:
                self._executemany(conn, "runs", _RUN_COLUMNS, run_rows)
                self._executemany(conn, "run_records", _RECORD_COLUMNS, record_rows)
                self._executemany(conn, "run_tallies", _TALLY_COLUMNS, [_stored(r, stamp) for r in tally_rows])
            else:
                self._copy(conn, "runs", _RUN_COLUMNS, run_rows)
                self._copy(conn, "run_records", _RECORD_COLUMNS, record_rows)
                self._copy(conn, "run_tallies", _TALLY_COLUMNS, [_stored(r, stamp) for r in tally_rows])
            _rollups.add(conn, tallies)
            _sightings.add(conn, seen)

    @staticmethod
    def _executemany(conn: sa.Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608 (our names)

    @staticmethod
    def _copy(conn: sa.Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _heartbeats(self) -> None:
        """Two writers per SLA point, each reporting every 5 minutes for 30 days (the last one now)."""
        stamp = _sqlite_time if self.sqlite else (lambda moment: moment)
        rows = [
            (source, obj, writer, stamp(self.now - timedelta(minutes=m)), stamp(self.now - timedelta(minutes=m)))
            for source, obj in WRITERS
            for writer in ("job-a", "job-b")
            for m in range(5, DAYS * 24 * 60, 5)
        ]
        columns = ("source", "object", "writer", "synced_at", "received_at")
        with self.store.engine.begin() as conn:
            (self._executemany if self.sqlite else self._copy)(conn, "heartbeats", columns, rows)
        for source, obj in WRITERS:
            for writer in ("job-a", "job-b"):
                self.store.record_heartbeat(source, obj, self.now, self.now, writer=writer)


def _stored(row: dict[str, Any], stamp: Any) -> tuple[Any, ...]:
    """A run_tallies row as the bulk path takes it: JSON as text, the time as the dialect keeps it."""
    json_columns = ("reasons", "age_buckets")
    return tuple(stamp(row[c]) if c == "checked_at" else json.dumps(row[c]) if c in json_columns else row[c]
                 for c in _TALLY_COLUMNS)  # fmt: skip


def _bucket(age: float) -> int:
    return bisect_left(AGE_BOUNDS_S, age)


def store_url(kind: str, runs: int, folder: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / f'scale-{runs}.db'}"
    name = f"freshguard_scale_{runs}"
    with psycopg.connect(POSTGRES.replace("postgresql+psycopg://", "postgresql://") + "/postgres",
                         autocommit=True) as conn:  # fmt: skip
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f"CREATE DATABASE {name}")  # our own name
    return f"{POSTGRES}/{name}"


def seeded(url: str, runs: int, fresh: bool) -> tuple[bool, float]:
    """Seed the store unless it already holds `runs` runs; (seeded now, seconds it took)."""
    store = LineageStore(url)
    try:
        with store.engine.connect() as conn:
            have = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
        if have and not fresh:  # seeded earlier (a prune or the service's watcher may have trimmed it since)
            return False, 0.0
        if have:
            raise SystemExit(f"{url} holds {have} runs: remove it (or its database) to seed it again")
        started = time.perf_counter()
        Seeder(store, runs, datetime.now(UTC)).seed()
        if store.dialect == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        return True, time.perf_counter() - started
    finally:
        store.close()


def size_bytes(url: str) -> int:
    """The store's size on disk, after a checkpoint: what was written before (the seeding, an earlier bench)
    is in the database files, so that a checkpoint it would cause does not land in the measurements after."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                return int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            conn.exec_driver_sql("CHECKPOINT")
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    finally:
        engine.dispose()


def record_rows(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM run_records").scalar_one())
    finally:
        engine.dispose()


def latencies(client: Any, method: str, url: str, count: int, body: Any = None) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.request(method, url, json=body() if callable(body) else body)
        out.append((time.perf_counter() - started) * 1000)
        if answer.status_code >= 300:
            raise SystemExit(f"{method} {url} answered {answer.status_code}: {answer.text[:300]}")
    return out


def figures(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  max {ordered[-1]:6.1f} ms  (n={len(ordered)})"


def check_body() -> dict[str, Any]:
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    stamp = (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"pipeline": "bench", "records": [
        {"id": f"{tag}-{n}", "object": "customer", "key": f"C-{tag}-{n}", "source": "salesforce",
         "observed_at": stamp, "updated_at": stamp,
         "fields": {"email": f"u{n}@example.com", "name": "Customer", "tier": "gold"}}
        for n in range(PER_RUN)]}  # fmt: skip


def measure(kind: str, runs: int, folder: Path, *, fresh: bool, requests: int, prune: bool) -> None:
    import httpx

    url = store_url(kind, runs, folder)
    did, seconds = seeded(url, runs, fresh)
    rows = record_rows(url)
    size = size_bytes(url)
    print(f"\n== {kind}, {runs:,} runs ({rows:,} record rows over {DAYS} days)")
    print(f"seeded: {'now, in ' + format(seconds, '.0f') + ' s' if did else 'earlier (reused)'}")
    print(f"store size: {size / 2**20:,.0f} MiB, {size / 2**20 / (rows / 1e6):,.0f} MiB per million record rows")
    served = serving(Store(url), 1, folder / f"serve-{kind}-{runs}.log")  # the watcher prunes in the background too
    with served as base, httpx.Client(base_url=base, timeout=60) as client:
        for path in ("/v1/health", "/metrics", "/"):
            latencies(client, "GET", path, 5)  # warm-up
            print(f"GET {path:<10} {figures(latencies(client, 'GET', path, requests))}")
        baseline = latencies(client, "POST", "/v1/check", 200, check_body)
        print(f"POST /v1/check (no prune)      {figures(baseline)}")
        if not prune:
            return
        command = [FRESHGUARD, "store", "prune", "--database", url, "--older-than", f"{DAYS - 10}d"]
        started = time.perf_counter()
        pruning = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
        during: list[float] = []
        while pruning.poll() is None:
            during += latencies(client, "POST", "/v1/check", 1, check_body)
        took = time.perf_counter() - started
        output = pruning.stdout.read() if pruning.stdout else ""
        print(f"prune of 10 days took {took:.1f} s; {output.strip().splitlines()[-1] if output else ''}")
        print(f"POST /v1/check during prune    {figures(during)}; over 50 ms: {sum(v > 50 for v in during)}")
        for path in ("/v1/health", "/metrics", "/"):
            print(f"GET {path:<10} after prune {figures(latencies(client, 'GET', path, requests // 2))}")
    size = size_bytes(url)
    print(f"store size after the prune: {size / 2**20:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, action="append", help="runs to seed (repeat for several sizes)")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/freshguard-scale"))  # noqa: S108 (this machine)
    parser.add_argument("--requests", type=int, default=100, help="requests per endpoint (default 100)")
    parser.add_argument("--fresh", action="store_true", help="seed again even when a store of that size exists")
    parser.add_argument("--no-prune", action="store_true", help="leave the seeded history as it is")
    parser.add_argument("--seed-only", action="store_true", help="seed the stores and stop")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for runs in args.runs or [100_000]:
        for kind in args.stores:
            if args.seed_only:
                did, seconds = seeded(store_url(kind, runs, args.folder), runs, args.fresh)
                print(f"{kind} {runs:,} runs: seeded {'in ' + format(seconds, '.0f') + ' s' if did else 'earlier'}")
                continue
            measure(kind, runs, args.folder, fresh=args.fresh, requests=args.requests, prune=not args.no_prune)


if __name__ == "__main__":
    main()
