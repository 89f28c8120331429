"""The cross-record part of a Spark check, after its windows: the words of reused ids, superseded copies and conflicts.

Runs inside `mapInArrow` on the partitions of the window over (object, key), so the copies of one
entity are in one partition. Rows go straight through with the words of their reasons, from the
one Python definition of each (`duplicate_id_reason`, `superseded_reason`); the copies of an entity
the window found disputed are held to the partition's end and resolved by `guard.checks.conflicts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from guard.checks.conflicts import resolve_conflicts
from guard.checks.envelope import read_envelope
from guard.checks.supersession import superseded_reason
from guard.columnar.frames import Rows
from guard.engine import duplicate_id_reason
from guard.spark.screen import PolicyShipment

#: What the second pass adds to every row: the words of each cross-record reason it has (else null).
WORDS = ("fg_reused_words", "fg_superseded_words", "fg_conflict")


def finisher(
    shipment: PolicyShipment, members: list[str], kept: list[str]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function `mapInArrow` runs over each partition: it returns the `kept` columns and `WORDS`.

    `members` are the envelope's columns, read for the disputed copies only.
    """

    def finish_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        compiled = shipment.compiled()
        held: list[pa.Table] = []
        for batch in batches:
            table = pa.Table.from_batches([batch])
            disputed = pc.fill_null(table.column("fg_disputed"), False)
            if pc.any(disputed).as_py():
                held.append(table.filter(disputed))
                table = table.filter(pc.invert(disputed))
            if table.num_rows:
                yield from _worded(table, kept, compiled.objects, {}).to_batches()
        if held:
            table = pa.concat_tables(held)
            yield from _worded(table, kept, compiled.objects, _conflicts(table, members, compiled)).to_batches()

    return finish_partition


def _worded(table: pa.Table, kept: list[str], rules: Any, conflicts: dict[int, str]) -> pa.Table:
    labels = table.column("fg_label").to_pylist()
    firsts = table.column("fg_first").to_pylist()
    behind = table.column("fg_behind").to_pylist()
    reused: list[str | None] = [None] * table.num_rows
    superseded: list[str | None] = [None] * table.num_rows
    if any(first is not None for first in firsts):
        ids = table.column("fg_id").to_pylist()
        for at, first in enumerate(firsts):
            if first is not None:
                reused[at] = duplicate_id_reason(labels[at], ids[at], first).message
    if any(behind):
        objects = table.column("fg_object").to_pylist()
        versions = table.column("fg_updated").to_pylist()
        marks = table.column("fg_mark").to_pylist()
        for at, late in enumerate(behind):
            if late:
                superseded[at] = superseded_reason(labels[at], versions[at], rules[objects[at]], marks[at]).message
    positions = table.column("fg_i").to_pylist()
    conflict = [conflicts.get(position) for position in positions] if conflicts else [None] * table.num_rows
    words = [pa.array(reused, pa.string()), pa.array(superseded, pa.string()), pa.array(conflict, pa.string())]
    return pa.Table.from_arrays([*table.select(kept).columns, *words], names=[*kept, *WORDS])


def _conflicts(table: pa.Table, members: list[str], compiled: Any) -> dict[int, str]:
    """CONFLICT words by row position, for the disputed copies of the entities in `table`."""
    frame = pl.from_arrow(table.select(members))
    assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a Table converts to a DataFrame
    positions = table.column("fg_i").to_pylist()
    entities = list(zip(table.column("fg_object").to_pylist(), table.column("fg_key").to_pylist(), strict=True))
    rows = Rows(frame)
    rows.prefetch(range(frame.height))
    groups: dict[tuple[str, str], list[int]] = {}
    for at in sorted(range(frame.height), key=positions.__getitem__):
        groups.setdefault(entities[at], []).append(at)
    naive_is_utc = compiled.naive_is_utc
    found = resolve_conflicts(
        ([read_envelope(positions[at], rows[at], naive_is_utc) for at in group] for group in groups.values()),
        compiled.objects,
    )
    return {position: reason.message for position, reason in found.items()}
