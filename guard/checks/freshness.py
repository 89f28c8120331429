"""Freshness: the copy's age against the object's SLA, and timestamps from the future."""

from __future__ import annotations

from datetime import datetime

from guard._durations import humanize_seconds
from guard.checks.envelope import Envelope
from guard.checks.rules import ObjectRules, humanized
from guard.decisions import Reason, ReasonCode


def check_freshness(
    env: Envelope, rules: ObjectRules | None, now: datetime, skew_s: float, out: list[Reason]
) -> float | None:
    """Append MISSING_TIMESTAMP, FUTURE_TIMESTAMP, STALE or AGING; return the age in seconds."""
    observed, updated = env.observed_at, env.updated_at
    if observed is None and updated is None:
        if not any(p.startswith(("`observed_at`", "`updated_at`")) for p in env.problems):
            out.append(
                Reason(
                    ReasonCode.MISSING_TIMESTAMP,
                    f"{env.label()} carries neither observed_at nor updated_at, so its age cannot be known",
                    {},
                )
            )
        return None
    for member, moment in (("observed_at", observed), ("updated_at", updated)):
        if moment is not None:
            ahead = (moment - now).total_seconds()
            if ahead > skew_s:
                out.append(
                    Reason(
                        ReasonCode.FUTURE_TIMESTAMP,
                        f"{env.label()} has {member} {humanize_seconds(ahead)} in the future, more than the "
                        f"{humanize_seconds(skew_s)} of clock skew allowed; the source's clock or data is wrong",
                        {"member": member, "ahead_s": round(ahead, 3), "clock_skew_s": skew_s},
                    )
                )
    age = (now - (observed if observed is not None else updated)).total_seconds()  # type: ignore[operator]
    if age < 0:
        age = 0.0
    if rules is None:
        return age
    reason = age_reason(env.label(), age, "observed_at" if observed is not None else "updated_at", rules)
    if reason is not None:
        out.append(reason)
    return age


def age_reason(label: str, age: float, measured_from: str, rules: ObjectRules) -> Reason | None:
    """STALE or AGING for a copy `age` seconds old (never negative), measured from `measured_from`; else None."""
    if age > rules.max_age_s:
        return Reason(
            ReasonCode.STALE,
            f"{label} is {humanized(age)} old; the limit agreed with {rules.agreed_with} is {rules.max_age_text}",
            {"age_s": round(age, 3), "max_age_s": rules.max_age_s, "measured_from": measured_from},
        )
    if rules.warn_age_s is not None and age > rules.warn_age_s:
        return Reason(
            ReasonCode.AGING,
            f"{label} is {humanized(age)} old, past the {humanized(rules.warn_age_s)} "
            f"warning mark but within the {rules.max_age_text} limit agreed with {rules.agreed_with}",
            {"age_s": round(age, 3), "warn_age_s": rules.warn_age_s, "max_age_s": rules.max_age_s},
        )
    return None
