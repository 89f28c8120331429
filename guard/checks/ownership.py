"""Ownership: the object is known, the source is known and allowed to serve it."""

from __future__ import annotations

from guard.checks.compiled import CompiledPolicy
from guard.checks.envelope import Envelope
from guard.checks.rules import ObjectRules
from guard.decisions import Reason, ReasonCode


def check_ownership(env: Envelope, compiled: CompiledPolicy, rules: ObjectRules | None, out: list[Reason]) -> None:
    """Append UNKNOWN_OBJECT, UNKNOWN_SOURCE or UNAUTHORIZED_SOURCE when they apply."""
    if rules is None:
        out.append(
            Reason(
                ReasonCode.UNKNOWN_OBJECT,
                f"record {env.id} is about {env.object!r}, which policy {compiled.policy.name} does not "
                "cover; add the object to the policy or stop sending it",
                {"object": env.object},
            )
        )
    if env.source not in compiled.sources:
        out.append(
            Reason(
                ReasonCode.UNKNOWN_SOURCE,
                f"{env.label()}: {env.source!r} is not a system policy {compiled.policy.name} knows; "
                "declare it under sources if it should be trusted",
                {"source": env.source},
            )
        )
    elif rules is not None and env.source not in rules.allowed_sources:
        copies = ", ".join(rules.replicas) if rules.replicas else "no other system"
        out.append(
            Reason(
                ReasonCode.UNAUTHORIZED_SOURCE,
                f"{env.label()}: {env.source} may not serve {rules.name}; its system of record is "
                f"{rules.owner} and copies may come from {copies}",
                {"source": env.source, "owner": rules.owner, "replicas": list(rules.replicas)},
            )
        )
