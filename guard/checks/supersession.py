"""Supersession: a copy older than the newest version the owner is known to have."""

from __future__ import annotations

from datetime import datetime

from guard.checks.envelope import Envelope
from guard.checks.rules import ObjectRules
from guard.decisions import Reason, ReasonCode


def check_supersession(env: Envelope, rules: ObjectRules, watermark: datetime | None, out: list[Reason]) -> None:
    """Append SUPERSEDED when the owner already has a newer `updated_at` for this entity."""
    if watermark is None or env.updated_at is None or env.updated_at >= watermark:
        return
    out.append(
        Reason(
            ReasonCode.SUPERSEDED,
            f"{env.label()} is the version of {env.updated_at.isoformat()}, but {rules.owner} already "
            f"has a newer one ({watermark.isoformat()})",
            {"updated_at": env.updated_at.isoformat(), "newest_known": watermark.isoformat(), "owner": rules.owner},
        )
    )
