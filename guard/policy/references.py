"""Checks that span a policy: owners and replicas are declared sources, SLAs name known things."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from guard.policy.model import Policy


def reference_problems(policy: Policy) -> Iterator[tuple[str, str]]:
    """Yield (path, message) for every reference that points nowhere or contradicts itself."""
    sources = list(policy.sources)
    for name, spec in policy.objects.items():
        base = f"objects.{name}"
        if spec.owner not in policy.sources:
            yield f"{base}.owner", _undeclared("source", spec.owner, sources, "sources")
        seen: set[str] = set()
        for index, replica in enumerate(spec.replicas):
            path = f"{base}.replicas.{index}"
            if replica == spec.owner:
                yield (
                    path,
                    (
                        f"{replica!r} is the owner of {name} and cannot also be a replica; "
                        "an object has one authoritative source"
                    ),
                )
            elif replica not in policy.sources:
                yield path, _undeclared("source", replica, sources, "sources")
            elif replica in seen:
                yield path, f"{replica!r} is listed twice"
            seen.add(replica)
    seen_points: set[tuple[str, str]] = set()
    for index, sla in enumerate(policy.slas):
        base = f"slas.{index}"
        if sla.source not in policy.sources:
            yield f"{base}.source", _undeclared("source", sla.source, sources, "sources")
        obj = policy.objects.get(sla.object)
        if obj is None:
            yield f"{base}.object", _undeclared("object", sla.object, list(policy.objects), "objects")
        elif sla.source in policy.sources and sla.source != obj.owner and sla.source not in obj.replicas:
            yield (
                f"{base}.source",
                (
                    f"{sla.source!r} neither owns nor replicates {sla.object}, so it has no integration "
                    "point to hold to an SLA; add it to the object's replicas or fix the SLA"
                ),
            )
        if (sla.source, sla.object) in seen_points:
            yield base, f"a second SLA for {sla.source} → {sla.object}; merge them into one entry"
        seen_points.add((sla.source, sla.object))
        for position, channel in enumerate(sla.notify):
            if channel not in policy.notify:
                yield f"{base}.notify.{position}", _undeclared("channel", channel, list(policy.notify), "notify")


def _undeclared(kind: str, name: str, known: list[str], section: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(known) if known else "none yet"
    return f"{name!r} is not a declared {kind}; {hint}declare it under `{section}` (declared: {listed})"
