"""An audit of one Parquet file by the Spark engine on local[2] against the polars engine; where Spark's time goes.

run: flock /tmp/bench.lock python bench/bench_spark.py [--records 1000000] [--master local[2]]

Both engines read the same file and write their decisions as Parquet, without a store. Spark's parts
are timed as cumulative plans, each written to the `noop` sink: the scan, the first pass in
`mapInArrow`, the numbering and windows, the second pass and the decisions, then the run's aggregates.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from bench_audit import write_records
from workload import SIGNING_KEY

from guard import Guard, load_policy

POLICY = Path(__file__).parent.parent / "policies" / "support-assistant.yaml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ENV = {"STRIPE_SIGNING_KEY": SIGNING_KEY}


def polars_audit(source: Path, out: Path) -> float:
    """Seconds to read, decide and write the decisions with the polars engine."""
    guard = Guard(load_policy(POLICY), environ=ENV)
    started = time.perf_counter()
    result = guard.check_frame(pl.read_parquet(source), pipeline="bench", now=NOW)
    result.decisions.write_parquet(out)
    return time.perf_counter() - started


def spark_audit(source: Path, out: Path, master: str) -> dict[str, float]:
    """Seconds of each part of a Spark audit (cumulative plans), and of the whole audit."""
    from pyspark import StorageLevel

    from guard.spark import record_check, spark_session

    started = time.perf_counter()
    spark = spark_session(master, conf={"spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    figures = {"session start": time.perf_counter() - started}
    guard = Guard(load_policy(POLICY), environ=ENV)

    def timed(name: str, plan: object) -> None:
        began = time.perf_counter()
        plan.write.mode("overwrite").format("noop").save()  # type: ignore[attr-defined]
        figures[name] = time.perf_counter() - began

    frame = spark.read.parquet(str(source))
    timed("scan only", frame)
    timed("scan and first pass (mapInArrow)", _first_pass(frame, guard))
    check = guard.check_dataframe(frame, pipeline="bench", now=NOW)
    timed("every part, decisions not kept", check.decisions)
    began = time.perf_counter()
    check = guard.check_dataframe(spark.read.parquet(str(source)), pipeline="bench", now=NOW)
    work = check.work.persist(StorageLevel.MEMORY_AND_DISK)
    check.decisions.write.mode("overwrite").parquet(str(out))
    figures["audit: decide and write"] = time.perf_counter() - began
    counted = time.perf_counter()
    run = record_check(check, started=began)
    figures["audit: run's aggregates"] = time.perf_counter() - counted
    figures["audit total"] = time.perf_counter() - began
    work.unpersist()
    counts = {action.value: n for action, n in run.counts.items()}
    print(f"  spark verdict {run.verdict.value}, counts {counts}")
    spark.stop()
    return figures


def _first_pass(frame: object, guard: Guard) -> object:
    """The plan of the first pass alone, as `plan_check` makes it."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import StructType

    from guard.checks.compiled import compile_policy
    from guard.columnar.frames import MEMBERS
    from guard.spark.screen import PARTITION, PolicyShipment, screened_fields, screener

    compiled = compile_policy(guard.policy, ENV)
    columns = [name for name in frame.columns if name in MEMBERS]  # type: ignore[attr-defined]
    shipment = PolicyShipment(compiled.policy, dict(compiled.signing_keys), 2000)
    source = frame.select(*columns).withColumn(PARTITION, F.spark_partition_id())  # type: ignore[attr-defined]
    schema = StructType([*source.schema.fields, *screened_fields().fields])
    return source.mapInArrow(screener(shipment, NOW, columns), schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "records.parquet"
        write_records(source, args.records)
        took = polars_audit(source, Path(tmp) / "polars.parquet")
        print(f"polars engine, {args.records:,} records: {took:.1f} s (read, decide, write the decisions)")
        figures = spark_audit(source, Path(tmp) / "spark.parquet", args.master)
        print(f"spark engine on {args.master}, {args.records:,} records:")
        for name, seconds in figures.items():
            print(f"  {name}: {seconds:.1f} s")
        differing = _differing(Path(tmp) / "polars.parquet", Path(tmp) / "spark.parquet")
        print(f"decisions of the two engines: {differing or 'identical, row for row (every column)'}")


def _differing(by_polars: Path, by_spark: Path) -> str | None:
    """None when the two engines wrote the same decisions (as multisets of rows), else what differs."""
    expected = pl.read_parquet(by_polars)
    found = pl.read_parquet(by_spark / "*.parquet").select(expected.columns).cast(expected.schema)
    if found.height != expected.height:
        return f"{found.height:,} rows against {expected.height:,}"
    order = [name for name, kind in expected.schema.items() if not isinstance(kind, pl.List)]
    found, expected = found.sort(order, nulls_last=True), expected.sort(order, nulls_last=True)
    different = [name for name in expected.columns if not found.get_column(name).equals(expected.get_column(name))]
    return f"the columns {', '.join(different)} differ" if different else None


if __name__ == "__main__":
    main()
