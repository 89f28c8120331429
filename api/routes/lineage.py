"""`GET /v1/lineage/{object}/{key}`: everything the guard decided about one entity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import ReaderCaller, StoreDep
from api.problems import responses
from api.schemas import EntityHistory

router = APIRouter(prefix="/v1/lineage", tags=["lineage"])


@router.get(
    "/{object}/{key}",
    response_model=EntityHistory,
    responses=responses(401, 403, 422, 503),
    summary="An entity's decisions",
)
def entity_lineage(
    _caller: ReaderCaller,
    store: StoreDep,
    object: Annotated[str, Path(description="The object, e.g. customer.")],  # noqa: A002 - the API's word
    key: Annotated[str, Path(description="The entity's key, e.g. C-1042.")],
) -> dict[str, Any]:
    """Every decision about one entity, oldest first, with the run, pipeline and policy of each."""
    return {"object": object, "key": key, "decisions": store.entity_history(object, key)}
