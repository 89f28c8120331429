"""Provenance: the lineage chain exists when required, starts at the owner, moves forward in time."""

from __future__ import annotations

from guard.checks.envelope import Envelope
from guard.checks.rules import ObjectRules
from guard.decisions import Reason, ReasonCode


def check_provenance(env: Envelope, rules: ObjectRules, out: list[Reason]) -> None:
    """Append MISSING_PROVENANCE or PROVENANCE_BROKEN when they apply."""
    hops = env.lineage
    if not hops:
        if rules.require_lineage and not any(p.startswith("`lineage") for p in env.problems):
            out.append(
                Reason(
                    ReasonCode.MISSING_PROVENANCE,
                    f"{env.label()} carries no lineage chain, which the policy requires for {rules.name}",
                    {},
                )
            )
        return
    first = hops[0][0]
    if first != rules.owner:
        out.append(
            Reason(
                ReasonCode.PROVENANCE_BROKEN,
                f"the lineage of {env.label()} starts at {first}, not at {rules.owner}, the system of record "
                f"for {rules.name}",
                {"problem": "origin", "origin": first, "owner": rules.owner},
            )
        )
    for position in range(1, len(hops)):
        (before, earlier), (system, at) = hops[position - 1], hops[position]
        if at < earlier:
            out.append(
                Reason(
                    ReasonCode.PROVENANCE_BROKEN,
                    f"the lineage of {env.label()} goes back in time: the hop to {system} is dated "
                    f"{at.isoformat()}, before the hop at {before} ({earlier.isoformat()})",
                    {"problem": "order", "hop": position, "at": at.isoformat(), "previous_at": earlier.isoformat()},
                )
            )
            break
