"""Supersession: a copy older than the newest version the owner is known to have."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from guard.checks.rules import ObjectRules, humanized
from guard.decisions import Reason, ReasonCode


def superseded_reason(label: str, updated_at: datetime, rules: ObjectRules, watermark: datetime) -> Reason:
    """SUPERSEDED for the copy named `label`, of version `updated_at`, older than `watermark`."""
    # Equal instants at other offsets are equal datetimes: the offsets are part of the key (the detail shows them).
    words, detail = _words(updated_at, updated_at.tzinfo, watermark, watermark.tzinfo, rules.owner)
    return Reason(ReasonCode.SUPERSEDED, label + words, dict(detail))


@functools.lru_cache(maxsize=16384)
def _words(
    updated_at: datetime, _zone: object, watermark: datetime, _mark_zone: object, owner: str
) -> tuple[str, dict[str, str]]:
    """What follows the copy's name, and the detail. Cached: a long-lived guard sees the same versions again."""
    behind = (watermark - updated_at).total_seconds()
    return (
        f" is the version of {_when(updated_at)}, {humanized(behind)} older than "
        f"the one {owner}, the system of record, already has ({_when(watermark)})",
        {"updated_at": updated_at.isoformat(), "newest_known": watermark.isoformat(), "owner": owner},
    )


@functools.lru_cache(maxsize=8192)
def _when(moment: datetime) -> str:
    """`2026-11-22 09:58:00 UTC`. Cached: equal instants (whatever their offsets) read the same in UTC."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such years unpadded; isoformat would pad them
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return utc.isoformat(" ", "seconds")[:19] + " UTC"
