"""guard._native against the Python twins, interleaved in one process. Prints figures.

Run: python bench/bench_native.py [--rounds N]

The same guard checks the same batches with the C loops and with the Python code, round after
round, so that both see the same machine: on a shared machine, runs minutes apart can differ
by half. Each round gives each mode a median (20-record checks) or a best-of-2 (100,000
records), and the figures printed are the medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).parent))

from workload import SIGNING_KEY, make_records

import guard.checks.contract
import guard.engine
import guard.lineage.store
import guard.signing
from guard import Guard, load_policy
from guard._accel import native

POLICY = Path(__file__).parent.parent / "policies" / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ENV = {"STRIPE_SIGNING_KEY": SIGNING_KEY}
#: Every module that picks the C loops when `native` is set.
USERS: tuple[ModuleType, ...] = (guard.engine, guard.signing, guard.checks.contract, guard.lineage.store)


@contextmanager
def mode(use_c: bool) -> Iterator[None]:
    """The C loops on or off, for the whole guard."""
    for module in USERS:
        module.native = native if use_c else None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in USERS:
            module.native = native  # type: ignore[attr-defined]


def seconds(check: Callable[[], object]) -> float:
    """Seconds one call takes."""
    started = time.perf_counter()
    check()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if native is None:
        raise SystemExit("guard._native is not built: nothing to compare")
    policy = load_policy(POLICY)
    big = make_records(100_000, NOW)
    small = [make_records(20, NOW, seed=seed) for seed in range(500)]
    with tempfile.TemporaryDirectory() as folder:
        plain = Guard(policy, environ=ENV)
        stored = Guard(policy, store=f"sqlite:///{folder}/bench.db", environ=ENV)

        def small_ms() -> float:
            spent = []
            for batch in small:
                started = time.perf_counter()
                plain.check(batch, pipeline="b", now=NOW)
                spent.append(time.perf_counter() - started)
            return statistics.median(spent) * 1e3

        def big_rate(on: Guard) -> float:
            return 100_000 / min(seconds(lambda: on.check(big, pipeline="b", now=NOW)) for _ in range(2))

        cases: list[tuple[str, Callable[[], float]]] = [
            ("20-record check, no store (ms)", small_ms),
            ("100,000 mixed, no store (records/s)", lambda: big_rate(plain)),
            ("100,000 mixed, SQLite (records/s)", lambda: big_rate(stored)),
        ]
        for _, measure in cases:  # warm both ways once
            for use_c in (True, False):
                with mode(use_c):
                    measure()
        figures: dict[tuple[str, bool], list[float]] = {}
        for _ in range(args.rounds):
            for name, measure in cases:
                for use_c in (True, False):
                    with mode(use_c):
                        figures.setdefault((name, use_c), []).append(measure())
        stored.close()
    print(f"guard._native against the Python twins, {args.rounds} interleaved rounds (medians):")
    for name, _ in cases:
        c, py = statistics.median(figures[(name, True)]), statistics.median(figures[(name, False)])
        better = py / c if "(ms)" in name else c / py
        shown = ".3f" if "(ms)" in name else ",.0f"
        print(f"  {name:<38} C {c:>9{shown}}   Python {py:>9{shown}}   C is {better:.2f}x as fast")


if __name__ == "__main__":
    main()
