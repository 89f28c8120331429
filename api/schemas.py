"""The API's request and response bodies, as docs/http-api.md describes them (apart from the library's own types)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue
from pydantic_core import PydanticCustomError

from guard.decisions import Action, ReasonCode, Verdict
from guard.limits import MAX_CONSUMER_TEXT, MAX_ID_LENGTH, MAX_NAME_LENGTH, consumer_problem, text_problem

_RECORD_EXAMPLE: dict[str, JsonValue] = {
    "id": "doc-17",
    "object": "customer",
    "key": "C-1042",
    "source": "sap",
    "observed_at": "2026-11-22T10:00:00Z",
    "updated_at": "2026-11-22T09:58:00Z",
    "fields": {"email": "ana@example.com", "credit_limit": 5000, "tier": "gold"},
    "content": "Customer C-1042: Ana, gold tier.",
}


#: The pydantic error type of text the store cannot keep: answered as `input-error`, not as a malformed request.
UNSTORABLE = "unstorable_text"


def _storable(limit: int) -> AfterValidator:
    def storable(value: str) -> str:
        problem = text_problem(value, limit)
        if problem is not None:
            raise PydanticCustomError(UNSTORABLE, "the text {problem}", {"problem": problem})
        return value

    return AfterValidator(storable)


#: A name (object, source, pipeline, model): 1 to 200 characters of text the store can keep.
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH), _storable(MAX_NAME_LENGTH)]
#: An entity's key or a record's id: 1 to 500 characters of text the store can keep.
Key = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), _storable(MAX_ID_LENGTH)]


def _storable_consumer(value: dict[str, Any] | None) -> dict[str, Any] | None:
    problem = None if value is None else consumer_problem(value)
    if problem is not None:
        raise PydanticCustomError(UNSTORABLE, "{problem}", {"problem": problem})
    return value


#: Who consumes a check's allowed records: any JSON object of text the store can keep.
Consumer = Annotated[dict[str, Any] | None, AfterValidator(_storable_consumer)]


class CheckRequest(BaseModel):
    """Records a pipeline is about to show a model; each is decided on its own."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"pipeline": "support-bot", "records": [_RECORD_EXAMPLE]}]},
    )

    pipeline: Name = Field(description="The pipeline the check is for.")
    records: list[Any] = Field(
        description="Record envelopes (see docs/records.md): `id`, `object`, `key`, `source`, `observed_at` "
        "and/or `updated_at`, `fields`, `content`, and `lineage` or `signature` where the policy asks. Any JSON "
        "value is taken: one that is not a valid envelope is decided INVALID_RECORD, not refused."
    )
    consumer: Consumer = Field(
        None,
        description="Who will consume the allowed records, e.g. {'model': ..., 'call_id': ...}; kept in lineage. "
        f"Text values up to {MAX_CONSUMER_TEXT} characters, no NUL or lone surrogate.",
    )


class PolicyInfo(BaseModel):
    """Which policy a check ran under."""

    name: str
    version: int


class ReasonOut(BaseModel):
    """Why a record was warned or blocked."""

    code: ReasonCode
    message: str = Field(description="Words an operator can act on.")
    detail: dict[str, Any] = Field(description="The same, for machines.")


class DecisionOut(BaseModel):
    """The decision about one record."""

    id: str = Field(description="The record's id, or `#<position>` when it has none.")
    object: str | None = None
    key: str | None = None
    source: str | None = None
    action: Action
    age_s: float | None = Field(description="The copy's age in seconds, when it could be told.")
    reasons: list[ReasonOut]


class CheckResponse(BaseModel):
    """A check that ran: 200 whatever its verdict."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "5d0c8f1e-3f57-4f6e-9a43-0f3d7c2d9b11",
                    "pipeline": "support-bot",
                    "policy": {"name": "support-assistant", "version": 1},
                    "checked_at": "2026-11-22T12:00:00+00:00",
                    "verdict": "partial",
                    "allowed": ["doc-17"],
                    "records": [
                        {
                            "id": "doc-17",
                            "object": "customer",
                            "key": "C-1042",
                            "source": "sap",
                            "action": "allow",
                            "age_s": 300.0,
                            "reasons": [],
                        },
                        {
                            "id": "doc-18",
                            "object": "customer",
                            "key": "C-2001",
                            "source": "sap",
                            "action": "block",
                            "age_s": 11100.0,
                            "reasons": [
                                {
                                    "code": "STALE",
                                    "message": "customer C-2001 from sap is 3h 5m old; the limit agreed with "
                                    "sales-ops is 1h",
                                    "detail": {"age_s": 11100.0, "max_age_s": 3600.0},
                                }
                            ],
                        },
                    ],
                }
            ]
        }
    )

    run_id: str
    pipeline: str
    policy: PolicyInfo
    checked_at: datetime
    verdict: Verdict
    allowed: list[str] = Field(description="Ids of the records that may reach the model (allowed or warned).")
    records: list[DecisionOut] = Field(description="One decision per record, in the order sent.")


class RunSummary(BaseModel):
    """One check as the lineage store remembers it."""

    run_id: str
    pipeline: str
    checked_at: datetime
    policy_name: str
    policy_version: int
    policy_hash: str
    verdict: Verdict
    records: int
    allowed: int
    warned: int
    blocked: int
    duration_ms: float
    consumer: dict[str, Any] | None = None


class StoredDecision(BaseModel):
    """One decision as the lineage store remembers it."""

    position: int = Field(description="The record's position in its check.")
    record_id: str
    object: str | None
    key: str | None
    source: str | None
    observed_at: datetime | None
    updated_at: datetime | None
    content_hash: str | None = Field(description="A hash of the record as it was sent.")
    age_s: float | None
    action: Action
    reasons: list[ReasonCode]
    explanations: list[ReasonOut] = Field(description="The reasons in full, as they were given at the time.")


class RunDetail(RunSummary):
    """One check with every decision it made, and the model calls that consumed it."""

    decisions: list[StoredDecision]
    model_calls: list[ModelCall] = Field(default_factory=list)


class RunList(BaseModel):
    """A page of checks, newest first."""

    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


class EntityDecision(StoredDecision):
    """A decision about an entity, with the check it was made in."""

    run_id: str
    pipeline: str
    checked_at: datetime
    policy_name: str
    policy_version: int
    model_calls: list[ModelCall] = Field(description="The model calls that consumed this decision's run.")


class ModelCallSeen(BaseModel):
    """A model call whose run decided about the entity."""

    model: str
    call_id: str | None
    run_ids: list[str] = Field(description="The runs linked to this call that decided about the entity.")
    saw_entity: bool = Field(description="Whether the entity was allowed (or warned) in one of those runs.")


class EntityHistory(BaseModel):
    """Everything the guard decided about one entity, oldest first, and the model calls that consumed it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "customer",
                    "key": "C-1042",
                    "model_calls": [
                        {
                            "model": "gpt-4o-2024-08-06",
                            "call_id": "chatcmpl-9x7",
                            "run_ids": ["5d0c8f1e-3f57-4f6e-9a43-0f3d7c2d9b11"],
                            "saw_entity": True,
                        }
                    ],
                    "decisions": [
                        {
                            "run_id": "5d0c8f1e-3f57-4f6e-9a43-0f3d7c2d9b11",
                            "pipeline": "support-bot",
                            "checked_at": "2026-11-22T12:00:00+00:00",
                            "policy_name": "support-assistant",
                            "policy_version": 1,
                            "position": 0,
                            "record_id": "doc-17",
                            "object": "customer",
                            "key": "C-1042",
                            "source": "sap",
                            "observed_at": "2026-11-22T11:55:00+00:00",
                            "updated_at": "2026-11-22T11:53:00+00:00",
                            "content_hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                            "age_s": 300.0,
                            "action": "allow",
                            "reasons": [],
                            "explanations": [],
                            "model_calls": [
                                {
                                    "model": "gpt-4o-2024-08-06",
                                    "call_id": "chatcmpl-9x7",
                                    "linked_at": "2026-11-22T12:00:00+00:00",
                                    "extra": {},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    object: str
    key: str
    model_calls: list[ModelCallSeen] = Field(description="Every model call linked to a run that decided about it.")
    decisions: list[EntityDecision]
    pruned_before: datetime | None = Field(
        None,
        description="Decisions checked before this were pruned (retention): an entity without decisions may have "
        "had some before it. Null when nothing was ever pruned.",
    )


#: A timestamp starts with its date: without this, pydantic reads "0.5" or "1763805600" as Unix time.
_STARTS_WITH_A_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_text(value: Any) -> Any:
    if not isinstance(value, str) or not _STARTS_WITH_A_DATE.match(value):
        raise ValueError("a timestamp is ISO 8601 text with a UTC offset, such as 2026-11-22T09:58:00Z")
    return value


#: ISO 8601 text with an offset (`2026-11-22T09:58:00Z`), in a body or a query; numbers and naive times are refused.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class Change(BaseModel):
    """The system of record changed an entity: copies older than `updated_at` are SUPERSEDED."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"object": "customer", "key": "C-1042", "updated_at": "2026-11-22T09:58:00Z"}]},
    )

    object: Name = Field(description="The object, e.g. customer; the caller's source must own it.")
    key: Key = Field(description="The entity's key, e.g. C-1042.")
    updated_at: Timestamp = Field(description="When the system of record changed the entity.")


class ChangesAccepted(BaseModel):
    """How many change notifications the guard learned."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 2}]})

    accepted: int


class Heartbeat(BaseModel):
    """An integration finished a sync of one object."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"object": "customer", "synced_at": "2026-11-22T10:00:00Z", "writer": "sap-customer-delta"}]
        },
    )

    object: Name = Field(description="The object synced; the source must own it or serve copies of it.")
    synced_at: Timestamp = Field(description="The point in time the sync brought the copies up to.")
    writer: Annotated[str, Field(max_length=MAX_NAME_LENGTH), _storable(MAX_NAME_LENGTH)] = Field(
        "",
        description="The sync job that reported, when a source has several (each one's lag is watched).",
    )


class HeartbeatStored(BaseModel):
    """A heartbeat as the lineage store keeps it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "sap",
                    "object": "customer",
                    "writer": "sap-customer-delta",
                    "synced_at": "2026-11-22T10:00:00Z",
                    "received_at": "2026-11-22T10:00:02.114Z",
                }
            ]
        }
    )

    source: str
    object: str
    writer: str = Field(description="The sync job that reported; empty when unnamed.")
    synced_at: datetime
    received_at: datetime = Field(description="When the service received it.")


class Consumption(BaseModel):
    """A model call that consumed a run's allowed records; any other member is kept as `extra`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"model": "gpt-4o-2024-08-06", "call_id": "chatcmpl-9x7", "ticket": "T-88"}]},
    )

    model: Name = Field(description="The model that was called.")
    call_id: Key | None = Field(None, description="The call's id, as the model's API gave it.")


class ModelCall(BaseModel):
    """A model call linked to a run."""

    model: str
    call_id: str | None
    linked_at: datetime = Field(description="When the link was made: the check, or a later POST .../consumption.")
    extra: dict[str, Any] = Field(description="Whatever else the consumer said about the call.")


class ConsumptionLinked(ModelCall):
    """The link as stored (a link already known is answered as it was first stored)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "5d0c8f1e-3f57-4f6e-9a43-0f3d7c2d9b11",
                    "model": "gpt-4o-2024-08-06",
                    "call_id": "chatcmpl-9x7",
                    "linked_at": "2026-11-22T12:00:03+00:00",
                    "extra": {"ticket": "T-88"},
                }
            ]
        }
    )

    run_id: str


class Liveness(BaseModel):
    """The process answers."""

    status: str = "ok"


class Readiness(BaseModel):
    """The guard can check: its policy is loaded and its lineage store answers."""

    status: str = "ready"
    policy: PolicyInfo
    store: str = Field(description="The lineage store's URL, without its password.")
