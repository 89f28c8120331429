"""Check throughput and per-call latency. Prints figures; run: python bench/bench_check.py [--postgres URL]."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from workload import SIGNING_KEY, make_clean_records, make_records

from guard import Guard, load_policy

POLICY = Path(__file__).parent.parent / "policies" / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ENV = {"STRIPE_SIGNING_KEY": SIGNING_KEY}


def small_checks(guard: Guard, runs: int) -> list[float]:
    """Seconds per 20-record check, `runs` times, each on a fresh batch of mixed records."""
    batches = [make_records(20, NOW, seed=seed) for seed in range(runs)]
    for batch in batches[:50]:
        guard.check(batch, pipeline="bench", now=NOW)
    times = []
    for batch in batches:
        started = time.perf_counter()
        guard.check(batch, pipeline="bench", now=NOW)
        times.append(time.perf_counter() - started)
    return times


def throughput(guard: Guard, records: list[dict[str, object]], repeats: int) -> list[float]:
    """Records per second of one big check, `repeats` times."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        guard.check(records, pipeline="bench", now=NOW)
        rates.append(len(records) / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small-runs", type=int, default=2000)
    parser.add_argument("--postgres", help="also measure with this PostgreSQL URL (postgresql+psycopg://...)")
    args = parser.parse_args()
    policy = load_policy(POLICY)
    big = make_records(args.records, NOW)

    guard = Guard(policy, environ=ENV)
    times = small_checks(guard, args.small_runs)
    print(
        f"20-record check, no store: median {statistics.median(times) * 1e3:.3f} ms, "
        f"p95 {statistics.quantiles(times, n=20)[-1] * 1e3:.3f} ms over {len(times)} checks"
    )
    rates = throughput(Guard(policy, environ=ENV), big, args.repeats)
    print(f"{args.records:,} mixed records, no store: median {statistics.median(rates):,.0f} records/s")
    rates = throughput(Guard(policy, environ=ENV), make_clean_records(args.records, NOW), args.repeats)
    print(f"{args.records:,} clean records (best case), no store: median {statistics.median(rates):,.0f} records/s")

    with (
        tempfile.TemporaryDirectory() as folder,
        Guard(policy, store=f"sqlite:///{folder}/bench.db", environ=ENV) as stored,
    ):
        times = small_checks(stored, min(args.small_runs, 500))
        print(f"20-record check, SQLite store: median {statistics.median(times) * 1e3:.3f} ms")
        rates = throughput(stored, big, args.repeats)
        print(f"{args.records:,} mixed records, SQLite store: median {statistics.median(rates):,.0f} records/s")
    if args.postgres:
        with Guard(policy, store=args.postgres, environ=ENV) as stored:
            times = small_checks(stored, min(args.small_runs, 500))
            print(f"20-record check, PostgreSQL store: median {statistics.median(times) * 1e3:.3f} ms")
            rates = throughput(stored, big, args.repeats)
            print(f"{args.records:,} mixed records, PostgreSQL store: median {statistics.median(rates):,.0f} records/s")


if __name__ == "__main__":
    main()
