"""The second pass over a frame: unique ids, supersession, contracts and conflicts across all its rows.

Vectorised where a pass only compares columns; the words of every reason come from the check
modules (and `guard.engine`), and a conflict is resolved by `guard.checks.conflicts` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import polars as pl

from guard._timestamps import parse_timestamp
from guard.checks.conflicts import resolve_conflicts
from guard.checks.contract import plain_value
from guard.checks.envelope import read_envelope
from guard.checks.supersession import superseded_reason
from guard.columnar.decisions import FrameDecisions
from guard.columnar.screen import FrameBatch, Template
from guard.decisions import Entity, Reason, ReasonCode
from guard.engine import DEFAULT_PANDERA_THRESHOLD, duplicate_id_reason, worded_failures

_UTC = pl.Datetime("us", "UTC")


def finish_frame(
    first: FrameBatch, watermarks: Mapping[Entity, datetime], *, pandera_threshold: int = DEFAULT_PANDERA_THRESHOLD
) -> FrameDecisions:
    """Second pass: unique ids, supersession, the contract, conflicts; then every row's action."""
    early = first.early
    _unique_ids(first, early)
    work = _supersession(first, watermarks)
    late: dict[int, list[Reason]] = {}
    _contracts(first, work, late, pandera_threshold)
    _conflicts(first, work, late)
    return FrameDecisions(work, first.templates, first.shapes, early, late)


def _labels(work: pl.DataFrame, indexes: list[int]) -> list[str]:
    picked = work[indexes]
    return [
        f"{obj} {key} from {source}"
        for obj, key, source in zip(picked["object"], picked["key"], picked["source"], strict=True)
    ]


def _unique_ids(first: FrameBatch, early: dict[int, list[Reason]]) -> None:
    work = first.work
    if work.get_column("id").n_unique() == work.height:
        return
    repeated = work.select("i", "id", "unnamed", first=pl.col("i").first().over("id")).filter(
        (pl.col("i") != pl.col("first")) & ~pl.col("unnamed")
    )
    envelopes = first.batch.envelopes
    for index, rid, _, first_index in repeated.iter_rows():
        label = envelopes[index].label() if index in envelopes else _labels(work, [index])[0]
        early.setdefault(index, []).append(duplicate_id_reason(label, rid, first_index))


def _supersession(first: FrameBatch, watermarks: Mapping[Entity, datetime]) -> pl.DataFrame:
    work = first.work
    if not watermarks:
        return work.with_columns(superseded=pl.lit(None, dtype=pl.Int64))
    known = work.filter(pl.col("updated").is_not_null() & pl.col("object").is_in(list(first.compiled.objects)))
    entities = known.select("object", "key").unique()
    marks = [(obj, key, mark) for obj, key in entities.iter_rows() if (mark := watermarks.get((obj, key))) is not None]
    if not marks:
        return work.with_columns(superseded=pl.lit(None, dtype=pl.Int64))
    table = pl.DataFrame(marks, schema={"object": pl.String, "key": pl.String, "mark": _UTC}, orient="row")
    behind = known.join(table, on=["object", "key"]).filter(pl.col("updated") < pl.col("mark"))
    raw = first.frame.get_column("updated_at") if "updated_at" in first.frame.columns else None
    rules = first.compiled.objects
    naive_is_utc = first.compiled.naive_is_utc
    ids: dict[tuple[Any, ...], int] = {}
    column: list[int] = []
    texts = raw.gather(behind.get_column("i")).to_list() if raw is not None else [None] * behind.height
    for (index, obj, mark), sent in zip(behind.select("i", "object", "mark").iter_rows(), texts, strict=True):
        text = plain_value(sent)
        token = (obj, text, mark)
        found = ids.get(token)
        if found is None:
            updated = first.batch.updated[index] if index in first.batch.envelopes else _parsed(text, naive_is_utc)
            found = ids[token] = len(first.templates)
            first.templates.append(Template(superseded_reason("", updated, rules[obj], mark)))
        column.append(found)
    superseded = pl.Series("superseded", [None] * work.height, dtype=pl.Int64)
    return work.with_columns(superseded.scatter(behind.get_column("i"), pl.Series(column, dtype=pl.Int64)))


@lru_cache(maxsize=8192)
def _parsed(text: str, naive_is_utc: bool) -> datetime:
    return parse_timestamp(text, naive_is_utc=naive_is_utc)


def contract_reasons(first: FrameBatch, work: pl.DataFrame, threshold: int) -> dict[int, list[Reason]]:
    """The SCHEMA_VIOLATION reasons of the rows of `work` (a first pass's rows), by row: the contract pass alone."""
    found: dict[int, list[Reason]] = {}
    _contracts(first, work, found, threshold)
    return found


def _contracts(first: FrameBatch, work: pl.DataFrame, late: dict[int, list[Reason]], threshold: int) -> None:
    fields = first.frame.get_column("fields") if "fields" in first.frame.columns else None
    struct = fields is not None and isinstance(fields.dtype, pl.Struct)
    for name, rules in first.compiled.objects.items():
        contract = rules.contract
        if not contract:
            continue
        members = work.filter((pl.col("object") == name) & pl.col("checkable")).get_column("i")
        if not len(members):
            continue
        if len(members) >= threshold:
            picked = fields.gather(members).struct.unnest() if struct and fields is not None else pl.DataFrame()
            failed = contract.failures_of_columns({c: picked.get_column(c) for c in picked.columns}, len(members))
        else:
            records = first.rows
            records.prefetch(members.to_list())
            failed = {
                position: found
                for position, index in enumerate(members.to_list())
                if (found := contract.check_one(records[index].get("fields")))
            }
        indexes = members.gather(list(failed)).to_list() if failed else []
        failed = dict(zip(range(len(indexes)), failed.values(), strict=True))
        if not failed:
            continue
        named = dict(enumerate(_labels(work, indexes)))
        specs = first.compiled.policy.objects[name].fields
        for position, reason in worded_failures(failed, named.__getitem__, name, specs):
            late.setdefault(indexes[position], []).append(reason)


def _conflicts(first: FrameBatch, work: pl.DataFrame, late: dict[int, list[Reason]]) -> None:
    aging = ReasonCode.AGING
    blocked = [i for i, found in first.early.items() if any(r.code is not aging for r in found)]
    blocked.extend(late)
    stale = [i for i, t in enumerate(first.templates) if t.reason.code is not aging]
    blocking_shapes = [i for i, shape in enumerate(first.shapes) if shape.blocks]
    eligible = work.select(
        "i",
        "object",
        "key",
        fine=~(
            pl.col("i").is_in(blocked)
            | pl.col("superseded").is_not_null()
            | pl.col("fresh").is_in(stale).fill_null(False)
            | pl.col("shape").is_in(blocking_shapes).fill_null(False)
            | pl.col("object").is_null()
        ),
    ).filter(pl.col("fine"))
    frame = first.frame
    same = [c for c in ("fields", "content") if c in frame.columns]
    entity = ["object", "key"]
    repeated = eligible.group_by(entity).len().filter(pl.col("len") > 1).drop("len")
    grouped = eligible.join(repeated, on=entity, how="semi")
    if not grouped.height or not same:
        return
    members = grouped.get_column("i")
    alike = grouped.with_columns(value=frame.select(same).gather(members).select(pl.struct(same).hash()).to_series())
    split = alike.group_by(entity).agg(low=pl.col("value").min(), high=pl.col("value").max())
    disputed = alike.join(split.filter(pl.col("low") != pl.col("high")).select(entity), on=entity, how="semi")
    if not disputed.height:
        return
    rows = first.rows
    rows.prefetch(disputed.get_column("i").to_list())
    naive_is_utc = first.compiled.naive_is_utc
    groups = [
        [read_envelope(i, rows[i], naive_is_utc) for i in sorted(indexes)]
        for indexes in disputed.group_by(entity).agg("i").get_column("i").to_list()
    ]
    for index, reason in resolve_conflicts(groups, first.compiled.objects).items():
        late.setdefault(index, []).append(reason)
