"""The per-record part of a Spark check: the columnar engine's first pass and contracts, on each partition.

Runs inside `mapInArrow` on the executors: every Arrow batch of a partition becomes a polars frame and
goes through `guard.columnar.screen.screen_frame` (timestamps, ownership, freshness, provenance,
signatures: the one definition of each) and the contract pass of `guard.columnar.finish`. Its rows
come back with the input's columns and the `fg_*` columns of `SCREENED`, each reason as its code and
words. A row's position is counted within its partition (`fg_local`); the driver adds the partition's
offset, and renames what a record without an id was called here (`record #<place in its batch>`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from guard.checks.compiled import CompiledPolicy
from guard.columnar.finish import contract_reasons
from guard.columnar.screen import screen_frame
from guard.columnar.shapes import Shape
from guard.decisions import Reason, ReasonCode
from guard.policy.model import Policy

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

PARTITION = "fg_p"
_TEXTS = pl.List(pl.String)
#: What the partition pass adds to every row (besides the input's columns).
SCREENED: dict[str, pl.DataType] = {
    "fg_local": pl.Int64(),
    "fg_batch_i": pl.Int64(),
    "fg_id": pl.String(),
    "fg_object": pl.String(),
    "fg_key": pl.String(),
    "fg_source": pl.String(),
    "fg_updated": pl.Datetime("us", "UTC"),
    "fg_age": pl.Float64(),
    "fg_label": pl.String(),
    "fg_fresh_code": pl.String(),
    "fg_fresh_words": pl.String(),
    "fg_early_codes": _TEXTS,
    "fg_early_messages": _TEXTS,
    "fg_late_codes": _TEXTS,
    "fg_late_messages": _TEXTS,
    "fg_unnamed": pl.Boolean(),
    "fg_clear": pl.Boolean(),
}


#: The Arrow types Spark takes for `SCREENED` (polars writes large text, which Spark does not read back).
_ARROW = pa.schema(
    [
        ("fg_local", pa.int64()),
        ("fg_batch_i", pa.int64()),
        ("fg_id", pa.string()),
        ("fg_object", pa.string()),
        ("fg_key", pa.string()),
        ("fg_source", pa.string()),
        ("fg_updated", pa.timestamp("us", tz="UTC")),
        ("fg_age", pa.float64()),
        ("fg_label", pa.string()),
        ("fg_fresh_code", pa.string()),
        ("fg_fresh_words", pa.string()),
        ("fg_early_codes", pa.list_(pa.string())),
        ("fg_early_messages", pa.list_(pa.string())),
        ("fg_late_codes", pa.list_(pa.string())),
        ("fg_late_messages", pa.list_(pa.string())),
        ("fg_unnamed", pa.bool_()),
        ("fg_clear", pa.bool_()),
    ]
)


@dataclass(frozen=True, slots=True)
class PolicyShipment:
    """What an executor needs to compile the policy itself: the policy and its signing keys (pickled to it)."""

    policy: Policy
    signing_keys: dict[str, bytes]
    pandera_threshold: int

    def compiled(self) -> CompiledPolicy:
        """The compiled policy, once per executor process."""
        return _compile(self)


_COMPILED: dict[str, CompiledPolicy] = {}


def _compile(shipment: PolicyShipment) -> CompiledPolicy:
    token = shipment.policy.content_hash() + repr(sorted(shipment.signing_keys.items()))
    found = _COMPILED.get(token)
    if found is None:
        found = _COMPILED[token] = CompiledPolicy(shipment.policy, shipment.signing_keys)
    return found


def screener(
    shipment: PolicyShipment, now: datetime, input_columns: list[str]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function `mapInArrow` runs over each partition (input columns plus `PARTITION`)."""

    def screen_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        compiled = shipment.compiled()
        seen = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            frame = pl.from_arrow(table.select(input_columns))
            assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a Table converts to a DataFrame
            found = screen_rows(frame, compiled, now, shipment.pandera_threshold)
            found = found.with_columns(pl.col("fg_local") + seen)
            seen += frame.height
            added = found.to_arrow().cast(_ARROW)
            yield from pa.Table.from_arrays(
                [*table.columns, *added.columns], names=[*table.column_names, *added.column_names]
            ).to_batches()

    return screen_partition


def screen_rows(frame: pl.DataFrame, compiled: CompiledPolicy, now: datetime, pandera_threshold: int) -> pl.DataFrame:
    """The `SCREENED` columns of each row of `frame`: its first pass and contract, as the polars engine finds them."""
    first = screen_frame(frame, compiled, now)
    work = first.work
    late = contract_reasons(first, work, pandera_threshold)
    envelopes = first.batch.envelopes
    templates = first.templates
    aging = ReasonCode.AGING
    labels = work.select(pl.format("{} {} from {}", "object", "key", "source")).to_series().to_list()
    for index, env in envelopes.items():
        labels[index] = env.label()
    fresh = work.get_column("fresh").to_list()
    early_codes, early_words = _listed(_with_shapes(first.early, work, first.shapes), work.height)
    late_codes, late_words = _listed(late, work.height)
    stale = {t for t, template in enumerate(templates) if template.reason.code is not aging}
    clear = [
        not (any(code != aging for code in codes) or late or (age is not None and age in stale))
        for codes, late, age in zip(early_codes, late_codes, fresh, strict=True)
    ]
    fresh_code = [None if t is None else templates[t].reason.code.value for t in fresh]
    fresh_words = [None if t is None else templates[t].reason.message for t in fresh]
    return pl.DataFrame(
        {
            "fg_local": work.get_column("i"),
            "fg_batch_i": work.get_column("i"),
            "fg_id": work.get_column("id"),
            "fg_object": work.get_column("object"),
            "fg_key": work.get_column("key"),
            "fg_source": work.get_column("source"),
            "fg_updated": work.get_column("updated"),
            "fg_age": work.get_column("age"),
            "fg_label": labels,
            "fg_fresh_code": fresh_code,
            "fg_fresh_words": fresh_words,
            "fg_early_codes": early_codes,
            "fg_early_messages": early_words,
            "fg_late_codes": late_codes,
            "fg_late_messages": late_words,
            "fg_unnamed": work.get_column("unnamed"),
            "fg_clear": pl.Series(clear, dtype=pl.Boolean) & work.get_column("object").is_not_null(),
        },
        schema=SCREENED,
    )


def _with_shapes(early: dict[int, list[Reason]], work: pl.DataFrame, shapes: list[Shape]) -> dict[int, list[Reason]]:
    """The first pass's reasons by row, those of rows judged by shape (`guard.columnar.shapes`) included."""
    if not shapes:
        return early
    found = dict(early)
    shaped = work.filter(pl.col("shape").is_not_null()).select("i", "id", "key", "shape")
    for index, rid, key, shape in shaped.iter_rows():
        found[index] = [*shapes[shape].worded(rid, key), *early.get(index, [])]
    return found


def _listed(reasons: dict[int, list[Reason]], size: int) -> tuple[list[list[str]], list[list[str]]]:
    codes: list[list[str]] = [[] for _ in range(size)]
    words: list[list[str]] = [[] for _ in range(size)]
    for index, found in reasons.items():
        codes[index] = [reason.code.value for reason in found]
        words[index] = [reason.message for reason in found]
    return codes, words


@lru_cache(maxsize=1)
def screened_fields() -> StructType:
    """The Spark types of the `SCREENED` columns."""
    from pyspark.sql.types import (
        ArrayType,
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    texts = ArrayType(StringType(), containsNull=True)
    kinds = {
        pl.Int64(): LongType(),
        pl.String(): StringType(),
        pl.Datetime("us", "UTC"): TimestampType(),
        pl.Float64(): DoubleType(),
        _TEXTS: texts,
        pl.Boolean(): BooleanType(),
    }
    return StructType([StructField(name, kinds[dtype], nullable=True) for name, dtype in SCREENED.items()])
