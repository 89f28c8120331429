"""`freshguard audit` of a Parquet file, from process start to the decisions written; peak memory. Prints figures.

run: python bench/bench_audit.py [--records 1000000] [--postgres postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from workload import SIGNING_KEY, make_records

POLICY = Path(__file__).parent.parent / "policies" / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def audit(source: Path, out: Path, database: str | None) -> tuple[float, float, int]:
    """Seconds from process start to exit, the child's peak RSS in MB, and its exit code."""
    command = [sys.executable, "-c", "from guard.cli.main import main; main()", "audit", str(source)]
    command += ["--policy", str(POLICY), "--now", NOW.isoformat(), "--out", str(out)]
    if database is not None:
        command += ["--database", database]
    env = {**os.environ, "STRIPE_SIGNING_KEY": SIGNING_KEY}
    started = time.perf_counter()
    ran = subprocess.run(command, env=env, capture_output=True, check=False)  # noqa: S603
    took = time.perf_counter() - started
    if ran.returncode not in (0, 1):
        raise SystemExit(ran.stderr.decode())
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    return took, peak_kb / 1024, ran.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", help="also measure with this PostgreSQL URL (an empty database is best)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "records.parquet"
        pl.DataFrame(make_records(args.records, NOW), infer_schema_length=None).write_parquet(source)
        stores: list[tuple[str, str | None]] = [("no store", None)]
        stores.append(("SQLite", f"sqlite:///{Path(tmp) / 'lineage.db'}"))
        if args.postgres:
            stores.append(("PostgreSQL", args.postgres))
        for name, database in stores:
            times = []
            for _ in range(args.repeats):
                took, peak, _ = audit(source, Path(tmp) / "decisions.parquet", database)
                times.append(took)
            print(
                f"audit of {args.records:,} records, {name}: best {min(times):.2f} s of {args.repeats} "
                f"(process start to decisions written); peak RSS so far {peak:,.0f} MB"
            )


if __name__ == "__main__":
    main()
