"""`GET /v1/policy`, `PUT /v1/policy`, `GET /v1/policy/versions[/{version}]`: the policy in force and its history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, CurrentCaller, require_roles
from api.deps import GuardDep, StoreDep
from api.keys import Role
from api.openapi import links, to_policy_version
from api.policy_schemas import PolicyHistory, PolicyInForce, PolicyPublished
from api.problems import ProblemLocation, problem, responses
from guard import ConfigurationError, Guard, PolicyError, VersionConflictError, parse_policy_text
from guard.guard import policy_of_version
from guard.policy.load import JSON_TYPES, YAML_TYPES

router = APIRouter(prefix="/v1/policy", tags=["policy"])

AdminCaller = Annotated[Caller, Depends(require_roles(Role.ADMIN))]
_ORIGIN = "PUT /v1/policy"
_PUT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The whole policy file, as YAML or JSON (see docs/policy.md; `freshguard policy schema` "
        "prints its JSON Schema); its version must be higher than the one in force.",
        "content": {
            "application/yaml": {
                "schema": {"type": "string"},
                "example": "policy: support-assistant\nversion: 2\nsources:\n  salesforce: {team: sales-ops}\n"
                "objects:\n  customer: {owner: salesforce, max_age: 1h}\n",
            },
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "example": {
                    "policy": "support-assistant",
                    "version": 2,
                    "sources": {"salesforce": {"team": "sales-ops"}},
                    "objects": {"customer": {"owner": "salesforce", "max_age": "1h"}},
                },
            },
        },
    }
}


@router.get(
    "",
    response_model=PolicyInForce,
    responses={**links(PolicyVersion=to_policy_version("/version")), **responses(401, 503)},
    summary="The policy in force",
)
async def get_policy(guard: GuardDep, _caller: CurrentCaller) -> dict[str, Any]:
    """The policy checks run under now, as published (every key role may read it: it holds no secrets)."""
    return await run_in_threadpool(_in_force, guard)


def _in_force(guard: Guard) -> dict[str, Any]:
    guard.sync_policy()
    policy = guard.policy
    row = guard.store.policy_version(policy.version) if guard.store is not None else None
    document = policy.model_dump(mode="json", by_alias=True)
    if row is None:  # checked under a policy that was never published (no store)
        return {
            "name": policy.name, "version": policy.version, "content_hash": policy.content_hash(),
            "media_type": "application/json", "published_by": f"file:{policy.origin}", "published_at": None,
            "text": "", "document": document,
        }  # fmt: skip
    return {**row, "document": document}


@router.put(
    "",
    response_model=PolicyPublished,
    responses={
        **links(PolicyVersion=to_policy_version("/version")),
        **responses(
            *(400, 401, 403, 409, 413, 415, 422, 503),
            said={
                400: "The body is not UTF-8 text.",
                409: "The policy's version is not higher than every version already published.",
                415: "The body is sent neither as YAML (application/yaml) nor as JSON (application/json).",
                422: "The policy does not load (`errors` names every path, `objects.customer.max_age`), or cannot "
                "be used here.",
            },
            types={
                400: ("not-utf8",),
                409: ("version-conflict",),
                415: ("unsupported-media-type",),
                422: ("policy-refused", "policy-unusable"),
            },
        ),
    },
    openapi_extra=_PUT_BODY,
    summary="Publish a new version of the policy",
)
async def put_policy(request: Request, guard: GuardDep, caller: AdminCaller) -> Response | dict[str, Any]:
    """Validate and publish a policy (YAML or JSON); the next check runs under it, in every worker.

    Refused with 409 unless its version is higher than every version published, and with 422
    (naming each path) when it does not load. Checks already running finish under the old version.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES | YAML_TYPES:
        shown = media_type or "sent without a Content-Type"
        return problem(
            415, "unsupported-media-type",
            f"the policy is {shown}; send it as application/yaml or application/json",
        )  # fmt: skip
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return problem(400, "not-utf8", f"the policy is not UTF-8 text (byte {exc.start}); send it as UTF-8")
    try:
        policy = parse_policy_text(text, media_type, origin=_ORIGIN)
        previous = guard.policy.version
        row = await run_in_threadpool(
            lambda: guard.publish_policy(policy, text=text, media_type=media_type, published_by=caller.name)
        )
    except VersionConflictError as exc:
        return problem(409, "version-conflict", _problems_text(exc))
    except PolicyError as exc:
        return problem(422, "policy-refused", _problems_text(exc), _locations(exc))
    except ConfigurationError as exc:
        return problem(422, "policy-unusable", f"the policy cannot be used here: {exc}")
    return {**row, "previous_version": previous}


@router.get(
    "/versions",
    response_model=PolicyHistory,
    responses={**links(PolicyVersion=to_policy_version("/versions/0/version")), **responses(401, 422, 503)},
    summary="Policy versions",
)
async def list_versions(
    guard: GuardDep,
    store: StoreDep,
    _caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many versions, newest first.")] = 100,
) -> dict[str, Any]:
    """Every version published, newest first, with who published it and when."""
    await run_in_threadpool(guard.sync_policy)
    versions = await run_in_threadpool(store.policy_history, limit)
    return {"active_version": guard.policy.version, "versions": versions}


@router.get(
    "/versions/{version}",
    response_model=PolicyInForce,
    responses=responses(401, 404, 422, 503),
    summary="One policy version",
)
async def get_version(
    store: StoreDep, _caller: CurrentCaller, version: Annotated[int, Path(ge=0, le=2**31 - 1)]
) -> dict[str, Any]:
    """One published version with its text, as it was published."""
    row = await run_in_threadpool(store.policy_version, version)
    if row is None:
        raise HTTPException(404, f"no policy version {version} was published; GET /v1/policy/versions lists them")
    return {**row, "document": policy_of_version(row).model_dump(mode="json", by_alias=True)}


def _problems_text(exc: PolicyError) -> str:
    return "; ".join(str(problem) for problem in exc.problems)


def _locations(exc: PolicyError) -> list[ProblemLocation]:
    return [
        ProblemLocation(
            loc=["body", *(part for part in problem.path.split(".") if part)],
            message=problem.message if problem.line is None else f"{problem.message} (line {problem.line})",
            type="policy_problem",
        )
        for problem in exc.problems
    ]
