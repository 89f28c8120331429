"""Supersession: a copy older than the newest version the owner is known to have."""

from __future__ import annotations

from datetime import UTC, datetime

from guard._durations import humanize_seconds
from guard.checks.envelope import Envelope
from guard.checks.rules import ObjectRules
from guard.decisions import Reason, ReasonCode


def check_supersession(env: Envelope, rules: ObjectRules, watermark: datetime | None, out: list[Reason]) -> None:
    """Append SUPERSEDED when the owner already has a newer `updated_at` for this entity."""
    if watermark is None or env.updated_at is None or env.updated_at >= watermark:
        return
    behind = (watermark - env.updated_at).total_seconds()
    out.append(
        Reason(
            ReasonCode.SUPERSEDED,
            f"{env.label()} is the version of {_when(env.updated_at)}, {humanize_seconds(behind)} older than "
            f"the one {rules.owner}, the system of record, already has ({_when(watermark)})",
            {"updated_at": env.updated_at.isoformat(), "newest_known": watermark.isoformat(), "owner": rules.owner},
        )
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
