"""Supersession: a copy older than the newest version the owner is known to have."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from guard.checks.rules import ObjectRules, humanized
from guard.decisions import Reason, ReasonCode


def superseded_reason(label: str, updated_at: datetime, rules: ObjectRules, watermark: datetime) -> Reason:
    """SUPERSEDED for the copy named `label`, of version `updated_at`, older than `watermark`."""
    behind = (watermark - updated_at).total_seconds()
    return Reason(
        ReasonCode.SUPERSEDED,
        f"{label} is the version of {_when(updated_at)}, {humanized(behind)} older than "
        f"the one {rules.owner}, the system of record, already has ({_when(watermark)})",
        {
            "updated_at": _iso(updated_at, updated_at.tzinfo),
            "newest_known": _iso(watermark, watermark.tzinfo),
            "owner": rules.owner,
        },
    )


@functools.lru_cache(maxsize=8192)
def _iso(moment: datetime, _zone: object) -> str:
    """`moment.isoformat()`, cached: a long-lived guard writes the same versions and watermarks again.

    Equal instants at other offsets are equal datetimes, so the offset is part of the key.
    """
    return moment.isoformat()


@functools.lru_cache(maxsize=8192)
def _when(moment: datetime) -> str:
    """`2026-11-22 09:58:00 UTC`. Cached: equal instants (whatever their offsets) read the same in UTC."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such years unpadded; isoformat would pad them
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return utc.isoformat(" ", "seconds")[:19] + " UTC"
