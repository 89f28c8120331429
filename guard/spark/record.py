"""The run of a Spark check: its counts and per-integration-point tallies (Spark aggregations), kept in the store.

Only aggregates reach the driver: one row per (source, object) and per (source, object, code), and the
owner versions the check taught (one per entity whose watermark it raises).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from guard.decisions import Action, Entity, PolicyRef, Verdict, verdict_of_counts
from guard.tallies import AGE_BOUNDS_S, Tally

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from guard.spark.check import SparkCheck


@dataclass(frozen=True, slots=True)
class SparkRun:
    """What a Spark check decided, counted: the run as the store keeps it."""

    run_id: str
    pipeline: str
    policy: PolicyRef
    checked_at: datetime
    counts: dict[Action, int]
    tallies: list[Tally]
    duration_s: float
    consumer: Mapping[str, Any] | None = None  # an audit feeds no one model call

    @property
    def verdict(self) -> Verdict:
        """`pass` when nothing was blocked, `blocked` when nothing was allowed, else `partial`."""
        return verdict_of_counts(self.counts)

    @property
    def records(self) -> int:
        """How many records the check decided."""
        return sum(self.counts.values())


def record_check(check: SparkCheck, *, started: float | None = None) -> SparkRun:
    """Run the check's aggregations and keep its run, tallies and learned watermarks in the guard's store
    (or its memory, without a store). Runs the plan: persist `check.work` first to decide it only once.

    `started` (a `time.perf_counter()` reading) is when the check began, for its duration.
    """
    began = time.perf_counter() if started is None else started
    tallies = count_tallies(check.work)
    counts = {
        Action.ALLOW: sum(t.allowed for t in tallies),
        Action.WARN: sum(t.warned for t in tallies),
        Action.BLOCK: sum(t.blocked for t in tallies),
    }
    learned = dict(_learned(check))
    run = SparkRun(
        check.run_id, check.pipeline, check.policy, check.checked_at, counts, tallies, time.perf_counter() - began
    )
    store = check.where.store
    if store is not None:
        from guard.lineage.store import RunSummary

        summary = RunSummary(run.run_id, run.pipeline, run.policy, run.checked_at, counts, run.duration_s)
        store.write_run(summary, tallies, learned)
    elif learned:
        check.where.remember(learned)
    return run


def count_tallies(work: DataFrame) -> list[Tally]:
    """`guard.tallies.tally_check` of the decided rows, as two Spark aggregations."""
    from pyspark.sql import functions as F  # noqa: N812

    decided = work.select("source", "object", "action", "codes", F.col("age_s").alias("age"))
    point = ["source", "object"]
    age = F.col("age")
    bucket = sum((F.when(age > bound, 1).otherwise(0) for bound in AGE_BOUNDS_S), F.lit(0))
    buckets = [F.count(F.when(age.isNotNull() & (bucket == at), 1)) for at in range(len(AGE_BOUNDS_S) + 1)]
    rows = decided.groupBy(*point).agg(
        F.count(F.lit(1)).alias("records"),
        *[F.count(F.when(F.col("action") == action.value, 1)).alias(action.value) for action in Action],
        F.array(*buckets).alias("buckets"),
        F.max(age).alias("age_max"),
        F.coalesce(F.sum(age), F.lit(0.0)).alias("age_sum"),
    )
    found: dict[tuple[str | None, str | None], Tally] = {}
    for row in rows.collect():  # one row per point: a single job (toLocalIterator ran one per partition)
        found[(row["source"], row["object"])] = Tally(
            row["source"],
            row["object"],
            records=row["records"],
            allowed=row[Action.ALLOW.value],
            warned=row[Action.WARN.value],
            blocked=row[Action.BLOCK.value],
            age_buckets=list(row["buckets"]),
            age_max_s=row["age_max"],
            age_sum_s=float(row["age_sum"]),
        )
    codes = decided.select(*point, F.explode(F.array_distinct("codes")).alias("code")).groupBy(*point, "code").count()
    for row in codes.collect():  # one row per point and code
        found[(row["source"], row["object"])].reasons[row["code"]] = row["count"]
    return list(found.values())


def _learned(check: SparkCheck) -> Iterator[tuple[Entity, datetime]]:
    """The newest `updated_at` per entity among the owner's unblocked rows, where newer than its watermark."""
    from pyspark.sql import functions as F  # noqa: N812

    owners = check.owners
    if not owners:
        return
    owner = F.create_map(*[F.lit(text) for pair in owners.items() for text in pair])
    rows = check.work.filter(
        (F.col("source") == owner[F.col("object")])
        & (F.col("action") != Action.BLOCK.value)
        & F.col("fg_updated").isNotNull()
    )
    newest = rows.groupBy("object", "key").agg(F.max("fg_updated").alias("version"), F.max("fg_mark").alias("mark"))
    taught = newest.filter(F.col("mark").isNull() | (F.col("version") > F.col("mark")))
    # Up to one row per entity: streamed a partition at a time, the next fetched while this one is read.
    for row in taught.select("object", "key", "version").toLocalIterator(prefetchPartitions=True):
        yield (row["object"], row["key"]), _aware(row["version"])


def _aware(moment: datetime) -> datetime:
    """Spark hands timestamps back naive, in the session's time zone (UTC in Freshguard's sessions)."""
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
