"""check_frame throughput, and where it overtakes Guard.check on dicts. Prints figures.

run: python bench/bench_columnar.py [--records 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from workload import SIGNING_KEY, make_records

from guard import Action, Guard, load_policy

POLICY = Path(__file__).parent.parent / "policies" / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ENV = {"STRIPE_SIGNING_KEY": SIGNING_KEY}


def frame_rate(frame: pl.DataFrame, repeats: int) -> tuple[float, float]:
    """Best records/s of `repeats` checks of `frame` (a fresh guard each: no watermarks carried over); blocked share."""
    policy = load_policy(POLICY)
    best, blocked = 0.0, 0.0
    for _ in range(repeats):
        guard = Guard(policy, environ=ENV)
        started = time.perf_counter()
        result = guard.check_frame(frame, pipeline="bench", now=NOW)
        best = max(best, frame.height / (time.perf_counter() - started))
        blocked = result.counts[Action.BLOCK] / frame.height
    return best, blocked


def crossover(sizes: list[int], repeats: int) -> None:
    """Guard.check of dicts against building a frame of them and check_frame, by batch size."""
    policy = load_policy(POLICY)
    for size in sizes:
        records = make_records(size, NOW, seed=11)
        dicts = frame = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            Guard(policy, environ=ENV).check(records, pipeline="bench", now=NOW)
            dicts = min(dicts, time.perf_counter() - started)
            started = time.perf_counter()
            Guard(policy, environ=ENV).check_frame(
                pl.DataFrame(records, infer_schema_length=None), pipeline="bench", now=NOW
            )
            frame = min(frame, time.perf_counter() - started)
        print(f"  {size:>9,} dicts: check {size / dicts:>10,.0f} rec/s, ", end="")
        print(f"DataFrame + check_frame {size / frame:>10,.0f} rec/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--crossover", default="1000,10000,100000", help="batch sizes of dicts to compare")
    args = parser.parse_args()
    frame = pl.DataFrame(make_records(args.records, NOW), infer_schema_length=None)
    rate, blocked = frame_rate(frame, args.repeats)
    print(f"check_frame, {args.records:,} mixed records ({blocked:.0%} blocked), no store: {rate:,.0f} records/s")
    unsigned = frame.filter(pl.col("source") != "stripe")
    rate, blocked = frame_rate(unsigned, args.repeats)
    print(f"  the same without the signed invoices ({unsigned.height:,}, {blocked:.0%} blocked): {rate:,.0f} records/s")
    print("Guard.check against check_frame on lists of dicts (best of", args.repeats, "):")
    crossover([int(n) for n in args.crossover.split(",") if n], args.repeats)


if __name__ == "__main__":
    main()
