"""Durations as a policy writes them (`90s`, `1h30m`, `PT15M`, `3600`) and as people read them."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import isodate
from pytimeparse2 import parse as _parse_human

_NUMBER = re.compile(r"^[+]?\d+(\.\d+)?$")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60))
DURATION_FORMS = "90s, 15m, 1h30m, 2d, PT15M or a number of seconds"


def parse_duration(value: object) -> timedelta:
    """Parse a policy duration; raise ValueError with the accepted forms when it is not one."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or value is None:
        raise ValueError(f"expected a duration ({DURATION_FORMS}), got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(f"expected a duration ({DURATION_FORMS}), got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be zero or more, got {value!r}")
    return timedelta(seconds=seconds)


def _parse_text(text: str) -> float:
    if _NUMBER.match(text):
        return float(text)
    if text[:1] in ("P", "p"):
        try:
            parsed = isodate.parse_duration(text.upper())
        except (isodate.ISO8601Error, ValueError) as exc:
            raise ValueError(f"{text!r} is not an ISO 8601 duration ({exc})") from exc
        if not isinstance(parsed, timedelta):
            raise ValueError(f"{text!r} uses years or months, whose length varies; write days instead (P30D)")
        return parsed.total_seconds()
    seconds = _parse_human(text)
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration; use forms like {DURATION_FORMS}")
    return float(seconds)


def format_duration(delta: timedelta) -> str:
    """Exact compact form that parses back to the same duration: `1h30m`, `2d`, `0.5s`."""
    micros = round(delta.total_seconds() * 1_000_000)
    if micros < 0:
        return "-" + format_duration(-delta)
    seconds, fraction = divmod(micros, 1_000_000)
    parts: list[str] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    if fraction:
        parts.append(f"{seconds}.{fraction:06d}".rstrip("0") + "s")
    elif seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


def humanize_seconds(seconds: float) -> str:
    """Approximate form for messages, two largest units: `3h 5m`, `2d 4h`, `45s`."""
    whole = int(seconds)
    if whole < 60:
        return f"{max(whole, 0)}s"
    parts: list[str] = []
    for unit, size in _UNITS:
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append(f"{count}{unit}")
    if not parts or len(parts) < 2:
        parts.append(f"{whole}s")
    head = parts[:2]
    return " ".join(p for p in head if not p.startswith("0")) or head[0]
