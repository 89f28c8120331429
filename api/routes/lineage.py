"""`GET /v1/lineage/{object}/{key}`: everything the guard decided about one entity, and which model calls saw it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import ReaderCaller, StoreDep
from api.openapi import links, to_run
from api.problems import responses
from api.schemas import EntityHistory

router = APIRouter(prefix="/v1/lineage", tags=["lineage"])


@router.get(
    "/{object}/{key}",
    response_model=EntityHistory,
    responses={**links(GetRun=to_run("/decisions/0/run_id")), **responses(401, 403, 422, 503)},
    summary="An entity's decisions",
)
def entity_lineage(
    _caller: ReaderCaller,
    store: StoreDep,
    object: Annotated[str, Path(description="The object, e.g. customer.")],  # noqa: A002 - the API's word
    key: Annotated[str, Path(description="The entity's key, e.g. C-1042.")],
) -> dict[str, Any]:
    """Every decision about one entity, oldest first, with the run, pipeline, policy and model calls of each.

    `pruned_before` says how far back history goes when older decisions were pruned (retention).
    """
    decisions = store.entity_history(object, key)
    pruned = store.pruned_before().get("records")
    return {"object": object, "key": key, "model_calls": model_calls_seen(decisions), "decisions": decisions,
            "pruned_before": pruned}  # fmt: skip


def model_calls_seen(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct model calls linked to these decisions' runs, in the order of the decisions."""
    seen: dict[tuple[str, str | None], dict[str, Any]] = {}
    for decision in decisions:
        for call in decision["model_calls"]:
            entry = seen.setdefault(
                (call["model"], call["call_id"]),
                {"model": call["model"], "call_id": call["call_id"], "run_ids": [], "saw_entity": False},
            )
            if decision["run_id"] not in entry["run_ids"]:
                entry["run_ids"].append(decision["run_id"])
            entry["saw_entity"] = entry["saw_entity"] or decision["action"] != "block"
    return list(seen.values())
