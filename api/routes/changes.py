"""`POST /v1/changes`: a system of record tells the guard which entities changed (supersession)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.deps import CurrentGuardDep, MetricsDep, SettingsDep, SourceCaller
from api.keys import Role
from api.openapi import links, to_lineage
from api.problems import ProblemLocation, problem, responses
from api.schemas import Change, ChangesAccepted
from guard import Guard
from guard.policy.model import Policy

router = APIRouter(prefix="/v1", tags=["changes"])


@router.post(
    "/changes",
    response_model=ChangesAccepted,
    responses={
        **links(EntityLineage=to_lineage("/0", sent=True)),
        **responses(
            *(400, 401, 403, 413, 415, 422, 503),
            types={413: ("too-large", "too-many-changes"), 422: ("invalid-request", "unknown-object", "input-error")},
            said={
                422: "The changes are not of the shape this endpoint takes, name an object the policy does not "
                "cover, or are dated in the future."
            },
        ),
    },
    summary="Tell the guard which entities its owner changed",
)
async def post_changes(
    changes: list[Change], caller: SourceCaller, guard: CurrentGuardDep, settings: SettingsDep, metrics: MetricsDep
) -> Response | dict[str, Any]:
    """Learn change notifications from an object's owner: copies older than `updated_at` become SUPERSEDED.

    Only the owner's source key (or an admin key) may post changes to an object.
    """
    if len(changes) > settings.max_records:
        return problem(
            413,
            "too-many-changes",
            f"the request carries {len(changes):,} changes; this service takes at most "
            f"{settings.max_records:,} at once: split them",
        )
    policy = guard.policy
    unknown = _unknown_objects(changes, policy)
    if unknown:
        listed = "; ".join(f"changes[{error.loc[1]}].object: {error.message}" for error in unknown[:5])
        return problem(422, "unknown-object", f"policy {policy.name} does not cover {listed}", unknown)
    _only_owners(changes, policy, caller)
    await run_in_threadpool(_note, guard, changes)
    metrics.observe_changes((change.object for change in changes), policy)
    return {"accepted": len(changes)}


def _unknown_objects(changes: list[Change], policy: Policy) -> list[ProblemLocation]:
    known = ", ".join(sorted(policy.objects))
    return [
        ProblemLocation(
            loc=["body", index, "object"],
            message=f"{change.object!r} is not an object of the policy (it has: {known})",
            type="unknown_object",
        )
        for index, change in enumerate(changes)
        if change.object not in policy.objects
    ]


def _only_owners(changes: list[Change], policy: Policy, caller: Caller) -> None:
    """403 unless the caller's source owns every object changed (admins may post for any)."""
    if caller.role is Role.ADMIN:
        return
    for index, change in enumerate(changes):
        owner = policy.objects[change.object].owner
        if owner != caller.source:
            raise HTTPException(
                403,
                f"changes[{index}]: {change.object} is owned by {owner}; only the owner source may post change "
                f"notifications for it (a source key bound to {owner!r}, or an admin key), and the key sent is "
                f"bound to {caller.source!r}",
            )


def _note(guard: Guard, changes: list[Change]) -> None:
    guard.note_changes((change.object, change.key, change.updated_at) for change in changes)
