"""What the dashboard says, in words a model-ops team reads at a glance: durations, times, states, tiles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from guard._durations import humanize_seconds
from guard.health import HealthState, PointHealth

STATE_WORDS = {
    HealthState.HEALTHY: "Healthy",
    HealthState.DEGRADED: "At risk",
    HealthState.BREACHED: "Breached",
    HealthState.NO_DATA: "No data",
}
STATE_ICONS = {HealthState.HEALTHY: "✓", HealthState.DEGRADED: "!", HealthState.BREACHED: "✕", HealthState.NO_DATA: "?"}


def duration(seconds: float | None) -> str:
    """`47m`, `3h 5m`, `2d 4h`, `40s` (as the API's findings word them); an em dash for nothing."""
    return "—" if seconds is None else humanize_seconds(seconds)


def when(moment: datetime | None) -> str:
    """`2026-12-02 01:23 UTC`."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def when_html(moment: datetime | None) -> Markup:
    """`when`, kept on one line (a date does not break at its hyphens)."""
    return Markup('<span class="when">{}</span>').format(when(moment))


def ago(moment: datetime | None, now: datetime) -> str:
    """`12 min ago`."""
    if moment is None:
        return "never"
    return f"{duration(max((now - moment).total_seconds(), 0.0))} ago"


def percent(share: float | None) -> str:
    """`2.5%`, `0.04%`, `2%` (no trailing `.0`)."""
    if share is None:
        return "—"
    value = share * 100
    text = f"{value:.2f}" if 0 < value < 1 else f"{value:.1f}"
    return text.rstrip("0").rstrip(".") + "%" if "." in text else text + "%"


def tile(health: PointHealth, now: datetime) -> dict[str, Any]:
    """One overview tile: the state in a word and a sentence of what is wrong (or right)."""
    state = health.state
    name = f"{health.source} → {health.object}"
    return {
        "source": health.source,
        "object": health.object,
        "name": name,
        "state": None if state is None else state.value,
        "state_word": "No SLA" if state is None else STATE_WORDS[state],
        "icon": "·" if state is None else STATE_ICONS[state],
        "sentence": situation(health, now),
        "team": health.team,
        "health": health,
    }


def situation(health: PointHealth, now: datetime) -> str:
    """What stands out about a point, in a few words."""
    parts: list[str] = []
    if health.paused:
        parts.append(f"paused by its schedule; last sync {ago(health.last_sync, now)}")
    elif "deadline" in health.breaches and health.due is not None:
        parts.append(f"the load due by {health.due.strftime('%a %H:%M %Z')} has not arrived")
    elif health.lag_s is not None and health.max_lag_s is not None:
        lag, agreed = duration(health.lag_s), duration(health.max_lag_s)
        parts.append(f"behind by {lag}; agreed {agreed}" if health.lag_s > health.max_lag_s * 0.75 else
                     f"last sync {lag} ago; agreed {agreed}")  # fmt: skip
    elif health.lag_s is not None:
        parts.append(f"last sync {duration(health.lag_s)} ago")
    if health.block_rate is not None:
        window = duration(health.window_s)
        rate = f"{percent(health.block_rate)} of {health.records:,} records blocked in the last {window}"
        if health.max_block_rate is not None:
            rate += f" (agreed at most {percent(health.max_block_rate)})"
        parts.append(rate)
    if health.state is HealthState.DEGRADED and (health.burn_short or 0) > 1:
        parts.append(f"blocks are using up the error budget {health.burn_short:.1f}× too fast")
    if not parts:
        return f"no sync reported and no record checked in the last {duration(health.window_s)}"
    return "; ".join(parts)
