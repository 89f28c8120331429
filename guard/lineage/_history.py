"""Reading the check history back: runs, one run's decisions, one entity's decisions, tallies, coverage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from guard.lineage import _feeds, _rollups, _sightings, _tallies
from guard.lineage._base import REPORT_EXTRA_S, StoreBase
from guard.lineage._values import storable
from guard.lineage.tables import run_records, runs
from guard.tallies import Tally


class HistoryStore(StoreBase):
    """The read side of checks."""

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with every decision it made, or None when the store has no such run."""
        run_id = storable(run_id)
        with self._connect("read a run") as conn:
            run = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if run is None:
                return None
            records = conn.execute(
                sa.select(run_records).where(run_records.c.run_id == run_id).order_by(run_records.c.position)
            ).mappings()
            decisions = [_record_out(r) for r in records]
            return {**run, "decisions": decisions, "model_calls": _feeds.calls_by_run(conn, [run_id])[run_id]}

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        verdict: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Runs newest first, filtered; `after` (checked_at, run_id) continues a listing past that run."""
        query = sa.select(runs).order_by(runs.c.checked_at.desc(), runs.c.run_id).limit(limit)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == storable(pipeline))
        if verdict is not None:
            query = query.where(runs.c.verdict == verdict)
        if since is not None:
            query = query.where(runs.c.checked_at >= since)
        if until is not None:
            query = query.where(runs.c.checked_at < until)
        if after is not None:
            at, run_id = after
            query = query.where(
                sa.or_(runs.c.checked_at < at, sa.and_(runs.c.checked_at == at, runs.c.run_id > storable(run_id)))
            )
        with self._connect("list runs") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def entity_history(self, obj: str, key: str) -> list[dict[str, Any]]:
        """Every decision about one entity, oldest first, with the run's pipeline, policy and model calls."""
        query = (
            sa.select(run_records, runs.c.pipeline, runs.c.checked_at, runs.c.policy_name, runs.c.policy_version)
            .join(runs, runs.c.run_id == run_records.c.run_id)
            .where(run_records.c.object == storable(obj), run_records.c.key == storable(key))
            .order_by(runs.c.checked_at, runs.c.run_id, run_records.c.position)
        )
        with self._connect("read an entity's history", extra_s=REPORT_EXTRA_S) as conn:
            history = [_record_out(row) for row in conn.execute(query).mappings()]
            calls = _feeds.calls_by_run(conn, [decision["run_id"] for decision in history])
        for decision in history:
            decision["model_calls"] = calls[decision["run_id"]]
        return history

    def entity_keys(self, obj: str, key: str, limit: int = 10) -> list[tuple[str, str]]:
        """Entities matching object and key case-insensitively, exact matches first, then keys holding `key`."""
        wanted_obj, wanted_key = storable(obj).lower(), storable(key).lower()
        lowered = sa.func.lower(run_records.c.key)
        same_object = sa.func.lower(run_records.c.object) == wanted_obj
        escaped = wanted_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found: list[tuple[str, str]] = []
        with self._connect("look an entity up") as conn:
            for condition in (lowered == wanted_key, lowered.like(f"%{escaped}%", escape="\\")):
                query = (
                    sa.select(run_records.c.object, run_records.c.key)
                    .where(same_object, condition, run_records.c.key.is_not(None))
                    .distinct()
                    .order_by(run_records.c.key)
                    .limit(limit)
                )
                for row in conn.execute(query):
                    if (row[0], row[1]) not in found and len(found) < limit:
                        found.append((row[0], row[1]))
        return found

    def decisions(
        self,
        *,
        action: str | None = None,
        pipeline: str | None = None,
        source: str | None = None,
        obj: str | None = None,
        reason: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Decisions newest first, with their run's pipeline, time and policy, filtered as asked."""
        query = (
            sa.select(run_records, runs.c.pipeline, runs.c.checked_at, runs.c.policy_name, runs.c.policy_version)
            .join(runs, runs.c.run_id == run_records.c.run_id)
            .order_by(runs.c.checked_at.desc(), run_records.c.run_id, run_records.c.position)
            .limit(limit)
            .offset(offset)
        )
        filters = {run_records.c.action: action, runs.c.pipeline: pipeline, run_records.c.source: source,
                   run_records.c.object: obj}  # fmt: skip
        for column, wanted in filters.items():
            if wanted is not None:
                query = query.where(column == storable(wanted))
        if reason is not None:  # `reasons` holds the codes comma-separated
            query = query.where((sa.literal(",") + run_records.c.reasons + sa.literal(",")).contains(f",{reason},"))
        if since is not None:
            query = query.where(runs.c.checked_at >= since)
        with self._connect("list decisions", extra_s=REPORT_EXTRA_S) as conn:
            return [_record_out(row) for row in conn.execute(query).mappings()]

    def recent_blocks(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest blocked decisions, newest first, as `decisions(action="block")` gives them.

        Walks the runs newest first (by index) to the newest that blocked anything, then reads only their
        records: the cost follows `limit`, not the history.
        """
        newest = sa.select(runs.c.run_id).where(runs.c.blocked > 0).order_by(runs.c.checked_at.desc()).limit(limit)
        query = (
            sa.select(run_records, runs.c.pipeline, runs.c.checked_at, runs.c.policy_name, runs.c.policy_version)
            .join(runs, runs.c.run_id == run_records.c.run_id)
            .where(run_records.c.run_id.in_(newest), run_records.c.action == "block")
            .order_by(runs.c.checked_at.desc(), run_records.c.run_id, run_records.c.position)
            .limit(limit)
        )
        with self._connect("list the newest blocks") as conn:
            return [_record_out(row) for row in conn.execute(query).mappings()]

    def entities_since(self, start: datetime, points: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """How many distinct entity keys each of `points` (source, object) had checked at or after `start`."""
        with self._connect("count the entities seen", extra_s=REPORT_EXTRA_S) as conn:
            return _sightings.counts_since(conn, start, points)

    def tallies_since(self, start: datetime, end: datetime | None = None) -> list[Tally]:
        """The per-integration-point tallies of every run checked in [start, end), oldest first."""
        with self._connect("read run tallies", extra_s=REPORT_EXTRA_S) as conn:
            return _tallies.since(conn, start, end)

    def window_tallies(self, starts: Iterable[datetime], end: datetime) -> list[Tally]:
        """Tallies per point summed between consecutive `starts` up to `end`, from the per-minute rollups.

        Summing those whose `checked_at` is at or after a start gives that start's window (in whole minutes).
        """
        with self._connect("read the tally rollups", extra_s=REPORT_EXTRA_S) as conn:
            return _rollups.window_tallies(conn, starts, end)

    def minute_tallies(self, start: datetime, end: datetime, point: tuple[str, str] | None = None) -> list[Tally]:
        """One tally per minute and point from the rollups, `start` to `end` (of one point, when asked)."""
        with self._connect("read the tally rollups", extra_s=REPORT_EXTRA_S) as conn:
            return _rollups.minute_tallies(conn, start, end, point)


def _record_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored decision: `reasons` as codes, `explanations` as the reasons in full (code, message, detail)."""
    out = dict(row)
    out["reasons"] = [code for code in row["reasons"].split(",") if code]
    out["explanations"] = row["explanations"] or []
    return out
