"""LiteLLM's Generic Guardrail API, read and answered: which texts carry records, and the action to answer.

Pure (no HTTP). LiteLLM sends the texts it extracted from a request (and the structured messages they
came from); a text carries records when it is JSON holding an envelope or a list of them (a tool result,
typically). Records are read from `texts`, where a blocked one can be replaced; from
`structured_messages` (tool messages) only when no text carries any. The answer is `NONE` (nothing
blocked, or no records), `GUARDRAIL_INTERVENED` with the texts rewritten (blocked records withheld, a
notice in their place) or `BLOCKED` with the reason in words (under `on_block: refuse`, or when blocked
records sit where LiteLLM lets no guardrail rewrite them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.gateway import Found, records_in_text, withheld_text
from guard import Action, CheckResult, Decision
from guard.integrations.context import summary

GuardrailAction = Literal["NONE", "BLOCKED", "GUARDRAIL_INTERVENED"]


class GuardrailRequest(BaseModel):
    """What LiteLLM posts to `/beta/litellm_basic_guardrail_api` (any member may be null; unknown ones are ignored)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "texts": ['{"id": "doc-1", "object": "customer", "key": "C-1042", "source": "sap", '
                              '"observed_at": "2026-11-22T10:00:00Z", "content": "Customer C-1042 ..."}'],
                    "structured_messages": None, "images": None, "tools": None, "request_data": {},
                    "input_type": "request", "litellm_call_id": "4f0e...", "litellm_trace_id": None,
                    "additional_provider_specific_params": {"pipeline": "support-bot", "on_block": "withhold"},
                }
            ]
        },
    )  # fmt: skip

    texts: list[str] | None = Field(None, description="The texts LiteLLM extracted from the request, in order.")
    structured_messages: list[dict[str, Any]] | None = Field(None, description="The chat messages they came from.")
    images: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    request_data: dict[str, Any] | None = Field(None, description="Who called LiteLLM (its virtual key's metadata).")
    input_type: Literal["request", "response"] = Field(
        "request", description="request: before the model call (checked); response: the model's answer (not checked)."
    )
    litellm_call_id: str | None = Field(None, description="LiteLLM's id of the model call; linked to the run.")
    litellm_trace_id: str | None = None
    additional_provider_specific_params: dict[str, Any] | None = Field(
        None, description="From LiteLLM's config: `pipeline`, `on_block` (withhold | refuse), `model`."
    )


class GuardrailResponse(BaseModel):
    """What LiteLLM reads back: the action, why (for BLOCKED), and the texts to send instead (GUARDRAIL_INTERVENED)."""

    action: GuardrailAction
    blocked_reason: str | None = None
    texts: list[str] | None = None


@dataclass(frozen=True, slots=True)
class GuardrailInput:
    """The records a guardrail request carries, and whether they sit in its texts (where they can be replaced)."""

    found: list[Found]
    in_texts: bool

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return [f.envelope for f in self.found]


def read_guardrail_request(request: GuardrailRequest) -> GuardrailInput:
    """Find the records: in `texts`, else in the tool messages of `structured_messages`."""
    found: list[Found] = []
    for i, text in enumerate(request.texts or []):
        found += records_in_text(text, f"texts[{i}]", i, None)
    if found:
        return GuardrailInput(found, in_texts=True)
    for m, message in enumerate(request.structured_messages or []):
        if isinstance(message, dict) and message.get("role") == "tool":
            found += records_in_text(message.get("content"), f"structured_messages[{m}].content", m, None)
    return GuardrailInput(found, in_texts=False)


def answer(
    request: GuardrailRequest, found: GuardrailInput, result: CheckResult, on_block: Literal["withhold", "refuse"]
) -> GuardrailResponse:
    """The guardrail's answer once the records are decided."""
    if not result.blocked:
        return GuardrailResponse(action="NONE")
    reason = f"Freshguard blocked {len(result.blocked)} of {len(result.decisions)} records (run {result.run_id}): "
    if on_block == "refuse":
        return GuardrailResponse(action="BLOCKED", blocked_reason=reason + summary(result))
    if not found.in_texts:
        return GuardrailResponse(
            action="BLOCKED",
            blocked_reason=reason + summary(result) + "; they sit in messages LiteLLM does not let a guardrail rewrite",
        )
    texts = list(request.texts or [])
    by_text: dict[int, list[tuple[Found, Decision]]] = {}
    for item, decision in zip(found.found, result.decisions, strict=True):
        assert item.message is not None  # noqa: S101 - records in texts always know their text
        by_text.setdefault(item.message, []).append((item, decision))
    for index, items in by_text.items():
        if any(d.action is Action.BLOCK for _, d in items):
            texts[index] = withheld_text(items)
    return GuardrailResponse(action="GUARDRAIL_INTERVENED", texts=texts)
