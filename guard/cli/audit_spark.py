"""`freshguard audit --engine spark`: read the inputs with Spark, decide them on the cluster, write the decisions
with Spark's writer, and summarise the run from Spark aggregations (only they reach this process)."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from rich.console import Console

from guard import Action, Guard, ReasonCode
from guard.cli.audit import AuditSummary
from guard.cli.output import working
from guard.cli.render_check import NO_SOURCE
from guard.errors import ConfigurationError, InputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from guard.spark import SparkRun

_JSON_LINES = {".jsonl", ".ndjson", ".json"}


def audit_on_spark(
    guard: Guard,
    inputs: list[str],
    *,
    pipeline: str,
    now: datetime | None,
    out: str | None,
    master: str | None,
    console: Console,
) -> tuple[SparkRun, AuditSummary]:
    """Decide every record of `inputs` (paths or URLs Spark reads) as one check on Spark; write `out` if given."""
    try:
        from pyspark import StorageLevel

        from guard.spark import record_check, spark_session
    except ImportError as exc:
        raise ConfigurationError(
            f"--engine spark needs PySpark ({exc}): pip install 'freshguard[spark]', with Java 17 installed"
        ) from exc
    started = time.perf_counter()
    spark = spark_session(master)
    frame = read_inputs(spark, inputs)
    check = guard.check_dataframe(frame, pipeline=pipeline, now=now)
    work = check.work.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with working(console, "Deciding on Spark…"):
            if out is not None:
                write_decisions(check.decisions, out)
            run = record_check(check, started=started)
            summary = summarize_work(work)
    finally:
        work.unpersist()
    if os.environ.get("FRESHGUARD_OPENLINEAGE"):
        from guard.integrations.openlineage import emit_audit

        emit_audit(run, inputs=inputs, output=out)
    return run, summary


def read_inputs(spark: SparkSession, inputs: list[str]) -> DataFrame:
    """The records of every input (Parquet files or directories; JSON Lines by suffix) as one DataFrame."""
    from pyspark.errors import AnalysisException

    frames = []
    for name in inputs:
        reader = spark.read
        try:
            if PurePosixPath(name).suffix.lower() in _JSON_LINES:
                frames.append(reader.json(name))
            else:
                frames.append(reader.parquet(name))
        except AnalysisException as exc:
            raise InputError(f"{name}: Spark cannot read it ({exc.getMessage()})") from exc
    found = frames[0]
    for other in frames[1:]:
        found = found.unionByName(other, allowMissingColumns=True)
    return found


def write_decisions(decisions: DataFrame, out: str) -> None:
    """The decisions as Parquet (a directory of part files), or JSON Lines when `out` ends in .jsonl/.ndjson."""
    from pyspark.errors import PySparkException

    writer = decisions.write.mode("overwrite")
    try:
        if PurePosixPath(out).suffix.lower() in _JSON_LINES:
            writer.json(out)
        else:
            writer.parquet(out)
    except PySparkException as exc:
        raise InputError(f"{out}: cannot write the decisions ({exc})") from exc


def summarize_work(work: DataFrame) -> AuditSummary:
    """`guard.cli.audit.summarize` as Spark aggregations of the decided rows: per code, the first row's message."""
    from pyspark.sql import functions as F  # noqa: N812

    per_code = work.select(F.explode(F.array_distinct("codes")).alias("code")).groupBy("code").count()
    records = {ReasonCode(row["code"]): int(row["count"]) for row in per_code.collect()}
    reasons = work.select("fg_i", F.explode(F.arrays_zip("codes", "messages")).alias("reason"))
    first = reasons.groupBy(F.col("reason.codes").alias("code")).agg(
        F.min_by("reason.messages", "fg_i").alias("message")
    )
    examples = {ReasonCode(row["code"]): row["message"] for row in first.collect()}
    by_source: dict[str, Counter[Action]] = {}
    for row in work.groupBy("source", "action").count().collect():
        source = row["source"] if row["source"] is not None else NO_SOURCE
        by_source.setdefault(source, Counter())[Action(row["action"])] += int(row["count"])
    return AuditSummary(records, examples, by_source)
