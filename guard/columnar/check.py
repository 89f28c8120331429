"""A check of a whole frame: both passes, the watermarks in between, the run and its lineage."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from guard._ids import new_run_id
from guard.checks.compiled import CompiledPolicy
from guard.columnar.decisions import FrameDecisions
from guard.columnar.finish import finish_frame
from guard.columnar.frames import as_frame
from guard.columnar.screen import FrameBatch, screen_frame
from guard.decisions import Action, CheckResult, Entity, PolicyRef, Verdict

if TYPE_CHECKING:
    from guard.lineage.store import LineageStore


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything a check of a frame decided: a `CheckResult` whose decisions are a polars DataFrame.

    `decisions` has one row per record, in order: `id, object, key, source, action, codes, messages, age_s`.
    """

    run_id: str
    pipeline: str
    policy: PolicyRef
    checked_at: datetime
    decisions: pl.DataFrame
    counts: dict[Action, int]
    duration_s: float
    consumer: Mapping[str, Any] | None = None

    @property
    def verdict(self) -> Verdict:
        """`pass` when nothing was blocked, `blocked` when nothing was allowed, else `partial`."""
        blocked = self.counts[Action.BLOCK]
        if blocked == 0:
            return Verdict.PASS
        return Verdict.BLOCKED if blocked == self.decisions.height else Verdict.PARTIAL

    @property
    def allowed(self) -> pl.Series:
        """Whether each record may reach the model (not blocked), in order."""
        return self.decisions.get_column("action") != Action.BLOCK.value


@dataclass(frozen=True, slots=True)
class Where:
    """Where a check reads watermarks and keeps what it learned: a store, or a guard's memory."""

    store: LineageStore | None
    memory: Mapping[Entity, datetime]
    remember: Callable[[Mapping[Entity, datetime]], None]


def decide(
    frame: pl.DataFrame, compiled: CompiledPolicy, now: datetime, where: Where, *, pandera_threshold: int
) -> tuple[FrameDecisions, dict[Entity, datetime]]:
    """Both passes over `frame`, with the watermarks of `where` in between; also the owner versions learned.

    The first pass's working state is dropped on return: a store write that follows has the memory.
    """
    first = screen_frame(frame, compiled, now)
    known = _watermarks(first, where)
    decided = finish_frame(first, known, pandera_threshold=pandera_threshold)
    versions = decided.owner_versions(compiled)
    learned = versions
    if known:
        learned = {entity: v for entity, v in versions.items() if (mark := known.get(entity)) is None or v > mark}
    return decided, learned


def check_frame(
    data: Any,
    compiled: CompiledPolicy,
    where: Where,
    *,
    pipeline: str,
    now: datetime,
    consumer: Mapping[str, Any] | None,
    pandera_threshold: int,
) -> FrameResult:
    """Decide every row of `data` as one check and keep its run and lineage where `where` says."""
    started = time.perf_counter()
    frame = as_frame(data)
    decided, learned = decide(frame, compiled, now, where, pandera_threshold=pandera_threshold)
    policy = PolicyRef(compiled.policy.name, compiled.policy.version, compiled.hash)
    result = FrameResult(
        run_id=new_run_id(),
        pipeline=pipeline,
        policy=policy,
        checked_at=now,
        decisions=decided.frame,
        counts=decided.counts(),
        duration_s=time.perf_counter() - started,
        consumer=dict(consumer) if consumer is not None else None,
    )
    if where.store is not None:
        from guard.lineage.frames import record_frame_check

        table = decided.table()
        kept = CheckResult(
            run_id=result.run_id,
            pipeline=pipeline,
            policy=policy,
            checked_at=now,
            decisions=table,
            allowed=(),
            duration_s=time.perf_counter() - started,
            consumer=result.consumer,
        )
        record_frame_check(where.store, kept, frame, learned)
    elif learned:
        where.remember(learned)
    return result


def _watermarks(first: FrameBatch, where: Where) -> Mapping[Entity, datetime]:
    if where.store is not None:
        wanted = first.entities()
        return where.store.watermarks(wanted) if wanted else {}
    if not where.memory:
        return {}
    memory = where.memory
    return {entity: mark for entity in first.entities() if (mark := memory.get(entity)) is not None}
