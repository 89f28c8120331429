"""A check of a Spark DataFrame, planned lazily: the decisions come back as a Spark DataFrame.

The plan: each partition goes through the polars engine's first pass and contracts (`guard.spark.screen`,
in `mapInArrow`); a broadcast of per-partition row counts numbers the rows as the input orders them;
a window over `id` finds reused ids; a broadcast join with the known watermarks finds superseded
copies; a window over (object, key) finds entities whose eligible copies differ, and on its partitions
(`guard.spark.finish`, `mapInArrow` again) only those go to `guard.checks.conflicts`. Every reason's
words come from the one Python definition of it; Spark puts each row's together. Nothing is collected
to the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from guard._ids import new_run_id
from guard.checks.compiled import CompiledPolicy
from guard.columnar.check import Where
from guard.columnar.decisions import DECISION_COLUMNS
from guard.columnar.frames import MEMBERS
from guard.decisions import Action, PolicyRef, ReasonCode
from guard.errors import InputError
from guard.spark.finish import WORDS, finisher
from guard.spark.screen import PARTITION, PolicyShipment, screened_fields, screener

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: Reason codes that only warn; any other blocks (`ReasonCode.action`, the one rule).
WARNING_CODES = tuple(code.value for code in ReasonCode if code.action is Action.WARN)


@dataclass(frozen=True, slots=True)
class SparkCheck:
    """A check of a Spark DataFrame, planned but not run: `decisions` is lazy until written or counted.

    `decisions` has the columns of `check_frame`'s: `id, object, key, source, action, codes, messages,
    age_s` (and the row's position, when asked for by `row_index`); rows in no particular order.
    `guard.spark.record_check` counts them and keeps the run where `where` says.
    """

    run_id: str
    pipeline: str
    policy: PolicyRef
    checked_at: datetime
    decisions: DataFrame
    work: DataFrame  # the decided rows: the decisions' columns and the working ones (fg_*) the run's lineage reads
    where: Where
    owners: Mapping[str, str]  # object -> its owner: whose unblocked versions raise watermarks


def plan_check(
    frame: DataFrame,
    compiled: CompiledPolicy,
    where: Where,
    *,
    pipeline: str,
    now: datetime,
    pandera_threshold: int,
    row_index: str | None = None,
) -> SparkCheck:
    """Plan the check of every row of `frame` (its columns: the envelope's members) as one (`Guard.check_dataframe`)."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's own idiom
    from pyspark.sql.types import StructType

    columns = [name for name in frame.columns if name in MEMBERS]
    foreign = [name for name in frame.columns if name.startswith("fg_")]
    if foreign:
        raise InputError(f"the DataFrame's columns {foreign} clash with the's working columns (fg_*): rename them")
    if not {"id", "object", "key", "source"} & set(columns):
        raise InputError(
            "check_dataframe takes a DataFrame whose columns are the envelope's members (id, object, key, source, "
            f"...); it has {frame.columns}"
        )
    shipment = PolicyShipment(compiled.policy, dict(compiled.signing_keys), pandera_threshold)
    source = frame.select(*columns).withColumn(PARTITION, F.spark_partition_id())
    schema = StructType([*source.schema.fields, *screened_fields().fields])
    screened = source.mapInArrow(screener(shipment, now, columns), schema)
    numbered = _numbered(screened, source)
    work = _superseded(numbered, _marks(frame.sparkSession, where, compiled))
    work = _disputed(_reused_ids(work), columns)
    work = _finished(work, columns, shipment)
    work = work.select("*", *_decision_columns())
    work = work.withColumn("action", _action())
    index = [F.col("fg_i").alias(row_index)] if row_index else []
    decisions = work.select(*DECISION_COLUMNS, *index)
    policy = PolicyRef(compiled.policy.name, compiled.policy.version, compiled.hash)
    return SparkCheck(new_run_id(), pipeline, policy, now, decisions, work, where, dict(compiled.owners))


def _numbered(screened: DataFrame, source: DataFrame) -> DataFrame:
    """Each row's position in the input (`fg_i`): its partition's offset (a broadcast of counts) plus its place there.

    A record without an id was named `#<place in its Arrow batch>`; it is renamed by its position.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    counts = source.select(PARTITION).groupBy(PARTITION).count()
    before = Window.orderBy(PARTITION).rowsBetween(Window.unboundedPreceding, -1)
    offsets = counts.select(PARTITION, F.coalesce(F.sum("count").over(before), F.lit(0)).alias("fg_offset"))
    rows = screened.join(F.broadcast(offsets), on=PARTITION).withColumn("fg_i", F.col("fg_offset") + F.col("fg_local"))
    unnamed = F.col("fg_unnamed")
    old = F.concat(F.lit("record #"), F.col("fg_batch_i").cast("string"))
    new = F.concat(F.lit("record #"), F.col("fg_i").cast("string"))

    def renamed(texts: Column) -> Column:
        return F.transform(
            texts,
            lambda text: F.when(
                text.startswith(old), F.concat(new, F.substring(text, F.length(old) + 1, 1 << 30))
            ).otherwise(text),
        )

    return rows.withColumns(
        {
            "fg_id": F.when(unnamed, F.concat(F.lit("#"), F.col("fg_i").cast("string"))).otherwise(F.col("fg_id")),
            "fg_label": F.when(unnamed, new).otherwise(F.col("fg_label")),
            "fg_early_messages": F.when(unnamed, renamed(F.col("fg_early_messages"))).otherwise(
                F.col("fg_early_messages")
            ),
        }
    ).drop(PARTITION, "fg_offset", "fg_local", "fg_batch_i")


def _marks(spark: SparkSession, where: Where, compiled: CompiledPolicy) -> DataFrame:
    """The watermarks known for the policy's objects (the store's, or the guard's memory), as a small DataFrame."""
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    objects = list(compiled.objects)
    if where.store is not None:
        known = list(where.store.watermarks_of(objects).items())
    else:
        wanted = set(objects)
        known = [(entity, mark) for entity, mark in list(where.memory.items()) if entity[0] in wanted]
    table = pa.table(
        {
            "fg_mark_object": pa.array([obj for (obj, _), _ in known], pa.string()),
            "fg_mark_key": pa.array([key for (_, key), _ in known], pa.string()),
            "fg_mark": pa.array([mark for _, mark in known], pa.timestamp("us", tz="UTC")),
        }
    )
    schema = StructType(
        [
            StructField("fg_mark_object", StringType()),
            StructField("fg_mark_key", StringType()),
            StructField("fg_mark", TimestampType()),
        ]
    )
    return spark.createDataFrame(table, schema=schema)


def _superseded(rows: DataFrame, marks: DataFrame) -> DataFrame:
    """SUPERSEDED where a copy's version is older than its entity's watermark (a broadcast join)."""
    from pyspark.sql import functions as F  # noqa: N812

    joined = rows.join(
        F.broadcast(marks),
        on=(F.col("fg_object") == F.col("fg_mark_object")) & (F.col("fg_key") == F.col("fg_mark_key")),
        how="left",
    )
    behind = F.col("fg_updated").isNotNull() & F.col("fg_mark").isNotNull() & (F.col("fg_updated") < F.col("fg_mark"))
    return joined.withColumn("fg_behind", behind).drop("fg_mark_object", "fg_mark_key")


def _reused_ids(rows: DataFrame) -> DataFrame:
    """INVALID_RECORD for a named record that reuses an earlier record's id (a window over `id`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    first = F.min("fg_i").over(Window.partitionBy("fg_id"))
    return rows.withColumn("fg_first", F.when(~F.col("fg_unnamed") & (first != F.col("fg_i")), first))


def _disputed(rows: DataFrame, columns: list[str]) -> DataFrame:
    """Whether a row is a copy of an entity whose eligible copies differ (a window over (object, key)).

    Eligible: passed every other check. Copies are compared by a hash of `fields` and `content`; the
    conflicts module then decides which of a disputed entity's copies really disagree.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812

    same = [name for name in ("fields", "content") if name in columns]
    if not same:
        return rows.withColumn("fg_disputed", F.lit(False))
    eligible = F.col("fg_clear") & ~F.col("fg_behind") & F.col("fg_first").isNull()
    copy = F.when(eligible, F.xxhash64(*same))
    entity = Window.partitionBy("fg_object", "fg_key")
    disputed = eligible & (F.count(copy).over(entity) > 1) & (F.min(copy).over(entity) != F.max(copy).over(entity))
    return rows.withColumn("fg_disputed", disputed)


def _finished(rows: DataFrame, columns: list[str], shipment: PolicyShipment) -> DataFrame:
    """The words of reused ids, superseded copies and conflicts, on the window's partitions (`guard.spark.finish`)."""
    from pyspark.sql.types import StringType, StructField, StructType

    kept = [name for name in rows.columns if name.startswith("fg_") and name != "fg_disputed"]
    fields = {field.name: field for field in rows.schema.fields}
    schema = StructType([*(fields[name] for name in kept), *(StructField(name, StringType()) for name in WORDS)])
    return rows.mapInArrow(finisher(shipment, columns, kept), schema)


def _decision_columns() -> list[Column]:
    """id, object, key, source, codes, messages, age_s: each row's reasons in the order `check` finds them."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import ArrayType, StringType

    texts = ArrayType(StringType())
    none = F.array().cast(texts)

    def one(value: Column) -> Column:
        return F.when(value.isNull(), none).otherwise(F.array(value))

    def coded(words: str, code: ReasonCode) -> Column:
        return one(F.when(F.col(words).isNotNull(), F.lit(code.value)))

    codes = F.concat(
        one(F.col("fg_fresh_code")),
        F.col("fg_early_codes"),
        coded("fg_reused_words", ReasonCode.INVALID_RECORD),
        coded("fg_superseded_words", ReasonCode.SUPERSEDED),
        F.col("fg_late_codes"),
        coded("fg_conflict", ReasonCode.CONFLICT),
    )
    messages = F.concat(
        one(F.concat(F.col("fg_label"), F.col("fg_fresh_words"))),
        F.col("fg_early_messages"),
        one(F.col("fg_reused_words")),
        one(F.col("fg_superseded_words")),
        F.col("fg_late_messages"),
        one(F.col("fg_conflict")),
    )
    return [
        F.col("fg_id").alias("id"),
        F.col("fg_object").alias("object"),
        F.col("fg_key").alias("key"),
        F.col("fg_source").alias("source"),
        codes.alias("codes"),
        messages.alias("messages"),
        F.col("fg_age").alias("age_s"),
    ]


def _action() -> Column:
    """Block when any code blocks, warn when every code only warns, else allow (`guard.engine.action_of`)."""
    from pyspark.sql import functions as F  # noqa: N812

    warnings = F.array(*[F.lit(code) for code in WARNING_CODES])
    return (
        F.when(F.exists("codes", lambda code: ~F.array_contains(warnings, code)), F.lit(Action.BLOCK.value))
        .when(F.size("codes") > 0, F.lit(Action.WARN.value))
        .otherwise(F.lit(Action.ALLOW.value))
    )
