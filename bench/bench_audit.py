"""`freshguard audit` of a Parquet file, from process start to the decisions written; peak memory. Prints figures.

run: python bench/bench_audit.py [--records 1000000] [--postgres postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from workload import SIGNING_KEY

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
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
    took = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code not in (0, 1):
        raise SystemExit(child.stderr.read().decode() if child.stderr else f"exit {code}")
    return took, usage.ru_maxrss / 1024, code


def write_records(path: Path, count: int) -> None:
    """The benchmark's records as Parquet, made in a process of its own (a fork of a big parent starts big)."""
    script = (
        "import sys; from datetime import datetime; import polars as pl; from workload import make_records; "
        "pl.DataFrame(make_records(int(sys.argv[1]), datetime.fromisoformat(sys.argv[2])), "
        "infer_schema_length=None).write_parquet(sys.argv[3])"
    )
    command = [sys.executable, "-c", script, str(count), NOW.isoformat(), str(path)]
    subprocess.run(command, cwd=Path(__file__).parent, check=True)  # noqa: S603


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", help="also measure with this PostgreSQL URL (an empty database is best)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "records.parquet"
        write_records(source, args.records)
        stores: list[tuple[str, str | None]] = [("no store", None)]
        stores.append(("SQLite", f"sqlite:///{Path(tmp) / 'lineage.db'}"))
        if args.postgres:
            stores.append(("PostgreSQL", args.postgres))
        for name, database in stores:
            runs = [audit(source, Path(tmp) / "decisions.parquet", database) for _ in range(args.repeats)]
            print(
                f"audit of {args.records:,} records, {name}: best {min(r[0] for r in runs):.2f} s of {args.repeats} "
                f"(process start to decisions written); peak RSS {max(r[1] for r in runs):,.0f} MB"
            )


if __name__ == "__main__":
    main()
