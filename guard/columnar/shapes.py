"""The rows the first pass cannot clear, judged by the check modules once per shape.

Rows the modules must judge often differ only in their id and key: a thousand leads of an object
the policy does not cover, every copy of a feed whose timestamps are unreadable. The per-record
modules (`guard.engine.full_path`) see a well-formed id and key only as words naming the record,
so rows of one shape (the same object, source, timestamps and lineage, the same members present,
from a source that does not sign) get the same reasons but for those words.

One row of each shape goes through the modules as it is, and once more with its id and key
replaced by markers: the reasons with markers are the shape's. The row as it is proves them:
unless the shape's reasons, worded for that row, are exactly the reasons the modules gave it,
every row of the shape goes through the modules. The rest of the shape costs a string
replacement per reason, done by polars.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from guard.checks.compiled import CompiledPolicy
from guard.columnar.frames import Rows
from guard.decisions import Reason, ReasonCode
from guard.engine import Batch, full_path
from guard.limits import MAX_ID_LENGTH, MAX_NAME_LENGTH

#: Where a row's id and key go in a shape's messages (text no row that takes part may hold).
ID_MARK, KEY_MARK = "\u27e6id\u27e7", "\u27e6key\u27e7"
_MARK_START = "\u27e6"
#: Members whose whole value decides the modules' reasons for a row of a known shape.
_SHAPE_MEMBERS = ("object", "source", "observed_at", "updated_at", "lineage")
#: Members only whose presence matters (the modules take any value of a column's type alike).
_PRESENCE_MEMBERS = ("fields", "content", "signature")
#: Below this many rows of one shape, each goes through the modules (proving a shape costs two rows).
_SMALLEST_SHAPE = 3


@dataclass(frozen=True, slots=True)
class Shape:
    """The reasons the modules give every row of a shape, with markers where the row's id and key go."""

    reasons: tuple[Reason, ...]

    def worded(self, rid: str, key: str) -> list[Reason]:
        """The reasons as the row with this id and key gets them."""
        return [
            Reason(r.code, r.message.replace(ID_MARK, rid).replace(KEY_MARK, key), dict(r.detail)) for r in self.reasons
        ]

    @property
    def blocks(self) -> bool:
        """Whether a row of this shape is blocked (a reason other than AGING)."""
        return any(reason.code is not ReasonCode.AGING for reason in self.reasons)


def worded_expr(words: pl.Expr) -> pl.Expr:
    """A shape's message (`words`) as the row's columns `id` and `key` word it."""
    return words.str.replace_all(ID_MARK, pl.col("id"), literal=True).str.replace_all(
        KEY_MARK, pl.col("key"), literal=True
    )


def judge_slow(
    frame: pl.DataFrame, work: pl.DataFrame, batch: Batch, slow: list[int]
) -> tuple[list[Shape], dict[int, int]]:
    """Put every row of `slow` through the modules, once per shape where rows share one.

    Fills `batch` for every row of `slow` as `full_path` would, but leaves `reasons` of the rows
    decided by shape empty: those are returned as (shapes, shape index by row).
    """
    shapes: list[Shape] = []
    shape_of: dict[int, int] = {}
    alone = list(slow)
    groups = _groups(frame, work, batch.compiled, slow)
    if groups:
        shaped = {i for members in groups for i in members}
        alone = [i for i in slow if i not in shaped]
        if isinstance(batch.raw, Rows):
            batch.raw.prefetch(alone + [members[0] for members in groups])
        for members in groups:
            shape = _prove(batch, members[0])
            if shape is None:
                alone.extend(members[1:])
                continue
            for index in members[1:]:
                shape_of[index] = len(shapes)
            shapes.append(shape)
        _copy_columns(batch, work, shape_of, groups)
    for index in alone:
        full_path(batch, index)
    return shapes, shape_of


def _groups(frame: pl.DataFrame, work: pl.DataFrame, compiled: CompiledPolicy, slow: list[int]) -> list[list[int]]:
    """Positions of the slow rows that share a shape, a list per shape of at least `_SMALLEST_SHAPE` rows."""
    if len(slow) < 2 * _SMALLEST_SHAPE:
        return []
    named = [pl.col(c) for c in ("id", "object", "key", "source")]
    fits = (
        pl.all_horizontal(c.is_not_null() & (c.str.len_bytes() > 0) for c in named)
        & pl.all_horizontal(pl.col("id", "key").str.len_chars() <= MAX_ID_LENGTH)
        & pl.all_horizontal(pl.col("object", "source").str.len_chars() <= MAX_NAME_LENGTH)
        & ~pl.any_horizontal(c.str.contains("\x00", literal=True) for c in named)
        & ~pl.any_horizontal(pl.col("id", "key").str.contains(_MARK_START, literal=True))
        & ~pl.col("source").is_in(list(compiled.signing_keys))  # a signature covers the id and key
    )
    candidates = work.select("i", "id", "object", "key", "source")[slow].filter(fits.fill_null(False))
    if candidates.height < _SMALLEST_SHAPE:
        return []
    picked = frame.gather(candidates.get_column("i"))
    keys = [pl.col(c) for c in _SHAPE_MEMBERS if c in picked.columns]
    keys += [pl.col(c).is_null().alias(f"{c}_absent") for c in _PRESENCE_MEMBERS if c in picked.columns]
    if not keys:
        return []
    try:
        grouped = (
            picked.select(keys)
            .with_columns(candidates.get_column("i"))
            .group_by([k.meta.output_name() for k in keys], maintain_order=True)
            .agg("i")
        )
    except pl.exceptions.PolarsError:  # a member of a type polars cannot group by: every row alone
        return []
    return [members for members in grouped.get_column("i").to_list() if len(members) >= _SMALLEST_SHAPE]


def _prove(batch: Batch, index: int) -> Shape | None:
    """The shape of the row at `index`, proven on that row (which the modules judge as well).

    None when the row's reasons do not follow from a shape: its id or key is more to them than words.
    """
    record = batch.raw[index]
    if type(record) is not dict:
        return None
    probe = Batch([{**record, "id": ID_MARK, "key": KEY_MARK}], batch.compiled, batch.now)
    full_path(probe, 0)
    found = tuple(probe.reasons[0] or ())
    if any(_MARK_START in repr(reason.detail) for reason in found):
        return None
    full_path(batch, index)
    shape = Shape(found)
    same = (
        shape.worded(batch.ids[index], batch.keys[index] or "") == list(batch.reasons[index] or ())
        and (index in batch.uncheckable) == (0 in probe.uncheckable)
        and index not in batch.unnamed
    )
    return shape if same else None


def _copy_columns(batch: Batch, work: pl.DataFrame, shape_of: dict[int, int], groups: list[list[int]]) -> None:
    """What the modules read of each row decided by shape: its first row's, but for its own id and key."""
    if not shape_of:
        return
    first = {i: members[0] for members in groups for i in members[1:] if i in shape_of}
    rows = list(first)
    picked = work.select("id", "key")[rows]
    ids, keys = picked.get_column("id").to_list(), picked.get_column("key").to_list()
    for index, rid, key in zip(rows, ids, keys, strict=True):
        model = first[index]
        batch.ids[index], batch.keys[index] = rid, key
        batch.objects[index], batch.sources[index] = batch.objects[model], batch.sources[model]
        batch.observed[index], batch.updated[index] = batch.observed[model], batch.updated[model]
        batch.ages[index] = batch.ages[model]
        if model in batch.uncheckable:
            batch.uncheckable.add(index)
