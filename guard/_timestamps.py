"""Timestamps of the record envelope: ISO 8601 text, always compared as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


class TimestampError(ValueError):
    """A timestamp that does not parse, or has no UTC offset where one is required."""


def parse_timestamp(value: object, *, naive_is_utc: bool) -> datetime:
    """Parse an envelope timestamp; naive ones are UTC only when the policy says so."""
    if not isinstance(value, str):
        raise TimestampError(f"expected an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimestampError(f"{value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise TimestampError(
                f"{value!r} has no UTC offset; add one (Z or +02:00), or set naive_timestamps: utc in the policy"
            )
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # Kept in UTC from here on: every database stores it alike (PostgreSQL takes offsets up to 15:59 only).
        return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    except OverflowError:
        raise TimestampError(f"{value!r} lies outside the years 1 to 9999 once in UTC") from None


def utc_now() -> datetime:
    """The current time, aware, in UTC: the one place the library reads the clock."""
    return datetime.now(UTC)
