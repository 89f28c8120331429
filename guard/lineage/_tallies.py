"""Per-run tallies by integration point: written with each check, summed over windows for SLA health.

Functions over a connection the store opened (and its transaction); `LineageStore` exposes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.lineage._values import storable
from guard.lineage.tables import run_tallies
from guard.tallies import Tally


def rows(run_id: str, checked_at: datetime, pipeline: str, tallies: Sequence[Tally]) -> list[dict[str, Any]]:
    """The `run_tallies` rows of a run: one per integration point."""
    return [
        {
            "run_id": run_id,
            "checked_at": checked_at,
            "pipeline": pipeline,
            "source": None if tally.source is None else storable(tally.source),
            "object": None if tally.object is None else storable(tally.object),
            "records": tally.records,
            "allowed": tally.allowed,
            "warned": tally.warned,
            "blocked": tally.blocked,
            "reasons": tally.reasons,
            "age_buckets": tally.age_buckets,
            "age_max_s": tally.age_max_s,
            "age_sum_s": tally.age_sum_s,
        }
        for tally in tallies
    ]


def since(conn: Connection, start: datetime, end: datetime | None = None) -> list[Tally]:
    """Every tally of the runs checked at or after `start` (and before `end`), oldest first."""
    query = sa.select(run_tallies).where(run_tallies.c.checked_at >= start).order_by(run_tallies.c.checked_at)
    if end is not None:
        query = query.where(run_tallies.c.checked_at < end)
    return [_tally(row) for row in conn.execute(query).mappings()]


def _tally(row: Any) -> Tally:
    return Tally(
        source=row["source"],
        object=row["object"],
        records=row["records"],
        allowed=row["allowed"],
        warned=row["warned"],
        blocked=row["blocked"],
        reasons=dict(row["reasons"] or {}),
        age_buckets=list(row["age_buckets"]),
        age_max_s=row["age_max_s"],
        age_sum_s=row["age_sum_s"],
        checked_at=row["checked_at"],
    )
