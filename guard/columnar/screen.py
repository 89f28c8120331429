"""The first pass over a frame: what the screen of `guard.engine` clears, decided for all rows at once.

A row is plain when the screen would clear it: named, of a known object from an allowed source,
timestamps in a common form and not in the future, a well-formed lineage from the owner, a valid
signature where its source signs. A plain row's only possible reason is its age, worded by the
freshness module once per distinct age. Every other row is read as the JSON record it stands for
and goes through the check modules (`guard.engine.full_path`), which alone decide its reasons.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from guard.checks.compiled import CompiledPolicy
from guard.checks.freshness import age_reason
from guard.columnar.canonical import canonical_texts
from guard.columnar.frames import Rows
from guard.columnar.shapes import Shape, judge_slow
from guard.columnar.stamps import parse_stamps
from guard.decisions import Reason
from guard.engine import Batch
from guard.limits import MAX_ID_LENGTH
from guard.signing import signature_matches

_UTC = pl.Datetime("us", "UTC")


@dataclass(frozen=True, slots=True)
class Template:
    """A reason shared by many rows but for its first words, which name the record."""

    reason: Reason  # its message is the words after the record's name

    def for_label(self, label: str) -> Reason:
        """The reason as the record named `label` gets it."""
        return Reason(self.reason.code, label + self.reason.message, dict(self.reason.detail))


@dataclass(slots=True)
class FrameBatch:
    """A frame after the first pass.

    `work` holds one row per record, in order: `i`, `id`, `object`, `key`, `source`, `updated`
    (aware UTC), `age`, `fresh` (a template index: the row's age reason), `shape` (a `shapes` index:
    the reasons the modules give its shape), `checkable` (its contract can be checked) and `unnamed`.
    `early` holds the other reasons the modules found, by row.
    """

    frame: pl.DataFrame
    compiled: CompiledPolicy
    now: datetime
    work: pl.DataFrame
    rows: Rows
    batch: Batch
    early: dict[int, list[Reason]]
    shapes: list[Shape]
    templates: list[Template] = field(default_factory=list)

    def entities(self) -> set[tuple[str, str]]:
        """The entities whose supersession watermark the check needs (rows with `updated_at`)."""
        known = list(self.compiled.objects)
        wanted = (
            self.work.lazy()
            .filter(pl.col("updated").is_not_null() & pl.col("object").is_in(known))
            .select("object", "key")
            .unique()
            .collect()
        )
        return set(wanted.iter_rows())


def _column(frame: pl.DataFrame, name: str) -> pl.Series:
    if name in frame.columns:
        return frame.get_column(name)
    return pl.Series(name, [None] * frame.height, dtype=pl.Null)


def _text(column: pl.Series, *, numbers: bool = False) -> pl.Series:
    """The column as text where the envelope takes it as it is; null where the modules must judge."""
    if column.dtype == pl.String:
        return column
    if numbers and column.dtype.is_integer() and column.dtype != pl.UInt64:  # the envelope reads an int key as text
        return column.cast(pl.String)
    return pl.Series(column.name, [None] * len(column), dtype=pl.String)


def screen_frame(frame: pl.DataFrame, compiled: CompiledPolicy, now: datetime) -> FrameBatch:
    """First pass: every per-record check of every row."""
    height = frame.height
    observed_raw, updated_raw = _column(frame, "observed_at"), _column(frame, "updated_at")
    work = pl.DataFrame(
        {
            "i": pl.int_range(height, dtype=pl.Int64, eager=True),
            "id": _text(_column(frame, "id")),
            "object": _text(_column(frame, "object")),
            "key": _text(_column(frame, "key"), numbers=True),
            "source": _text(_column(frame, "source")),
            "observed": parse_stamps(observed_raw),
            "updated": parse_stamps(updated_raw),
            "has_observed": observed_raw.is_not_null(),
            "has_updated": updated_raw.is_not_null(),
        }
    )
    limits = _limits(compiled)
    work = work.join(limits, on=["object", "source"], how="left", maintain_order="left")
    micros = pl.lit(now).cast(_UTC)
    stamp = pl.when(pl.col("has_observed")).then(pl.col("observed")).otherwise(pl.col("updated"))
    age = (micros - stamp).dt.total_microseconds() / 1e6
    ahead_updated = (pl.col("updated") - micros).dt.total_microseconds() / 1e6
    skew = compiled.clock_skew_s
    plain = (
        pl.all_horizontal(pl.col("id", "object", "key", "source").is_not_null())
        & pl.all_horizontal(pl.col("id", "object", "key", "source").str.len_bytes() > 0)
        # Text the store may not keep (too long, a NUL): the envelope check judges it (polars text is valid UTF-8).
        & pl.all_horizontal(pl.col("id", "key").str.len_chars() <= MAX_ID_LENGTH)
        & ~pl.any_horizontal(pl.col("id", "key").str.contains("\x00", literal=True))
        & pl.col("late_after").is_not_null()
        & (pl.col("has_observed") | pl.col("has_updated"))
        & (~pl.col("has_observed") | pl.col("observed").is_not_null())
        & (~pl.col("has_updated") | pl.col("updated").is_not_null())
        & (-age <= skew)
        & (~pl.col("has_updated") | (ahead_updated <= skew))
    )
    work = work.with_columns(age=age, plain=plain.fill_null(False))
    work = work.with_columns(plain=pl.col("plain") & _members_plain(frame) & _lineage_plain(frame, work, now))
    work = _signatures(frame, work, compiled)
    work = work.with_columns(age=pl.when(pl.col("age") > 0).then(pl.col("age")).otherwise(0.0))

    rows = Rows(frame)
    batch = Batch(rows, compiled, now)
    slow = work.get_column("plain").not_().arg_true().to_list()
    shapes, shape_of = judge_slow(frame, work, batch, slow)
    early = {index: found for index in slow if (found := batch.reasons[index])}
    result = FrameBatch(frame, compiled, now, work, rows, batch, early, shapes)
    result.work = _merge_slow(_fresh(result), batch, slow, shape_of)
    return result


def _limits(compiled: CompiledPolicy) -> pl.DataFrame:
    pairs = [
        (name, source, late_after, owner, lineage, source in compiled.signing_keys)
        for name, (_, late_after, sources, owner, lineage) in compiled.screen_limits.items()
        for source in sorted(sources)
    ]
    return pl.DataFrame(
        pairs,
        schema={
            "object": pl.String,
            "source": pl.String,
            "late_after": pl.Float64,
            "owner": pl.String,
            "require_lineage": pl.Boolean,
            "signs": pl.Boolean,
        },
        orient="row",
    )


def _members_plain(frame: pl.DataFrame) -> pl.Series:
    """Whether `fields`, `content` and `signature` are of the types the envelope takes as they are."""
    ok = pl.Series("ok", [True] * frame.height)
    for name, fits in (
        ("fields", lambda d: isinstance(d, pl.Struct)),
        ("content", lambda d: d == pl.String),
        ("signature", lambda d: d == pl.String),
    ):
        column = _column(frame, name)
        if column.dtype != pl.Null and not fits(column.dtype):
            ok = ok & column.is_null()
    return ok


def _lineage_plain(frame: pl.DataFrame, work: pl.DataFrame, now: datetime) -> pl.Series:
    """Whether each row's lineage lets the screen clear it: absent where not required, or well-formed from the owner."""
    column = _column(frame, "lineage")
    required = work.get_column("require_lineage").fill_null(False)
    absent = column.is_null()
    dtype = column.dtype
    if dtype == pl.Null:
        return ~required
    if not (
        isinstance(dtype, pl.List)
        and isinstance(dtype.inner, pl.Struct)
        and {"system", "at"} <= {f.name for f in dtype.inner.fields}
        and {f.name: f.dtype for f in dtype.inner.fields}["system"] == pl.String
    ):
        return absent & ~required
    hops = (
        pl.DataFrame({"i": work.get_column("i"), "owner": work.get_column("owner"), "hop": column})
        .filter(pl.col("hop").is_not_null())
        .with_columns(count=pl.col("hop").list.len())
        .explode("hop")
        .with_columns(system=pl.col("hop").struct.field("system"), at_raw=pl.col("hop").struct.field("at"))
    )
    hops = hops.with_columns(at=parse_stamps(hops.get_column("at_raw")))
    # Exploded in order: a row's first hop is where `i` changes; the hop before is the row above.
    first_hop = pl.col("i") != pl.col("i").shift(1).fill_null(-1)
    good = (
        hops.with_columns(
            fine=(
                pl.col("hop").is_not_null()
                & pl.col("system").is_not_null()
                & (pl.col("system").str.len_bytes() > 0)
                & pl.col("at").is_not_null()
                & (~first_hop | (pl.col("system") == pl.col("owner")))
                & (first_hop | (pl.col("at") >= pl.col("at").shift(1)))
                & (pl.col("count") > 0)
            ).fill_null(False)
        )
        .group_by("i")
        .agg(pl.col("fine").all())
    )
    looked = work.select("i").join(good, on="i", how="left", maintain_order="left").get_column("fine")
    return (absent & ~required) | (~absent & looked.fill_null(False))


def _signatures(frame: pl.DataFrame, work: pl.DataFrame, compiled: CompiledPolicy) -> pl.DataFrame:
    """A plain row from a source that signs stays plain only with a signature that verifies."""
    signs = work.get_column("signs").fill_null(False) & work.get_column("plain")
    if not signs.any():
        return work
    indexes = signs.arg_true()
    signed = frame.gather(indexes)
    texts = canonical_texts(signed).to_list()
    signatures = _text(_column(signed, "signature")).to_list()
    sources = work.get_column("source").gather(indexes).to_list()
    keys = compiled.signing_keys
    unsure = [position for position, text in enumerate(texts) if text is None]
    rows = Rows(signed)
    rows.prefetch(unsure)
    verified = []
    for position, (text, signature, source) in enumerate(zip(texts, signatures, sources, strict=True)):
        if signature is None:
            verified.append(False)
        elif text is None:
            verified.append(signature_matches(rows[position], signature, keys[source]))
        else:
            expected = hmac.digest(keys[source], text.encode(), "sha256").hex()
            verified.append(hmac.compare_digest(expected.encode(), signature.lower().encode()))
    failed = [index for index, good in zip(indexes.to_list(), verified, strict=True) if not good]
    if not failed:
        return work
    return work.with_columns(work.get_column("plain").scatter(failed, False))


def _fresh(result: FrameBatch) -> pl.DataFrame:
    """The age reason of each plain row, as a template per distinct (object, age, measured from)."""
    work = result.work
    late = work.filter(pl.col("plain") & (pl.col("age") > pl.col("late_after")))
    fresh = pl.Series("fresh", [None] * work.height, dtype=pl.Int64)
    if late.height:
        distinct = late.select("object", "age", "has_observed").unique()
        objects = result.compiled.objects
        ids: list[int | None] = []
        for obj, age, observed in distinct.iter_rows():
            reason = age_reason("", age, "observed_at" if observed else "updated_at", objects[obj])
            if reason is None:
                ids.append(None)
                continue
            ids.append(len(result.templates))
            result.templates.append(Template(reason))
        table = distinct.with_columns(fresh=pl.Series(ids, dtype=pl.Int64))
        fresh = (
            work.select("object", "age", "has_observed", "plain")
            .join(table, on=["object", "age", "has_observed"], how="left", maintain_order="left")
            .select(pl.when(pl.col("plain")).then(pl.col("fresh")))
            .to_series()
            .alias("fresh")
        )
    return work.with_columns(fresh)


def _merge_slow(work: pl.DataFrame, batch: Batch, slow: list[int], shape_of: dict[int, int]) -> pl.DataFrame:
    """The columns of the rows the modules read, as they read them, and the shape of those judged by shape."""
    checkable = pl.Series("checkable", [True] * work.height)
    unnamed = pl.Series("unnamed", [False] * work.height)
    shape = pl.Series("shape", [None] * work.height, dtype=pl.Int64)
    if shape_of:
        shape = shape.scatter(list(shape_of), pl.Series(list(shape_of.values()), dtype=pl.Int64))
    if not slow:
        return work.with_columns(checkable, unnamed, shape)
    taken: dict[str, tuple[list[Any], pl.DataType]] = {
        "id": ([batch.ids[i] for i in slow], pl.String()),
        "object": ([batch.objects[i] for i in slow], pl.String()),
        "key": ([batch.keys[i] for i in slow], pl.String()),
        "source": ([batch.sources[i] for i in slow], pl.String()),
        "observed": ([batch.observed[i] for i in slow], _UTC),
        "updated": ([batch.updated[i] for i in slow], _UTC),
        "age": ([batch.ages[i] for i in slow], pl.Float64()),
    }
    columns = [
        work.get_column(name).scatter(slow, pl.Series(values, dtype=dtype)) for name, (values, dtype) in taken.items()
    ]
    skip = batch.uncheckable
    columns.append(checkable.scatter(slow, [i not in skip for i in slow]))
    columns.append(unnamed.scatter(slow, [i in batch.unnamed for i in slow]))
    columns.append(shape)
    return work.with_columns(columns)
