"""LiteLLM's Generic Guardrail API, read and answered: which texts carry records, and the action to answer.

Pure (no HTTP). LiteLLM sends the texts it extracted from a request (and the structured messages they
came from). Texts are read by the fail-closed rules every integration shares
(`guard.integrations.tool_results`, as the gateway and the OpenAI wrapper read them): a record,
a list holding one, an object wrapping records one level deep; a text that seems to hold records those
rules cannot take apart is withheld whole. Records are read from `texts`, where a blocked one can be
replaced, and from the tool messages of `structured_messages` whose content is not one of the texts
(those cannot be rewritten). The answer is `NONE` (nothing blocked, or no records), `GUARDRAIL_INTERVENED`
with the texts rewritten (blocked records and unreadable texts replaced by notices that carry no record
values) or `BLOCKED` with the reasons in full (under `on_block: refuse`, or when what is blocked sits where
LiteLLM lets no guardrail rewrite it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guard import Action, CheckResult, Decision
from guard.integrations.context import read_value, summary
from guard.integrations.tool_results import TOOL_ROLES, Found, Withheld, placed, records_in_text, withheld_text

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
                    "input_type": "request", "litellm_call_id": "4f0e...", "litellm_trace_id": None, "model": "gpt-4o",
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
    model: str | None = Field(None, description="The model LiteLLM calls; linked to the run.")
    litellm_trace_id: str | None = None
    additional_provider_specific_params: dict[str, Any] | None = Field(
        None, description="From LiteLLM's config: `pipeline`, `on_block` (withhold | refuse)."
    )


class GuardrailResponse(BaseModel):
    """What LiteLLM reads back: the action, why (for BLOCKED), and the texts to send instead (GUARDRAIL_INTERVENED)."""

    action: GuardrailAction
    blocked_reason: str | None = None
    texts: list[str] | None = None


@dataclass(frozen=True, slots=True)
class GuardrailInput:
    """What a guardrail request carries: records and unreadable texts, in `texts` (rewritable) or elsewhere."""

    in_texts: list[Found] = field(default_factory=list)
    elsewhere: list[Found] = field(default_factory=list)  # in structured messages whose content is no text
    withheld_texts: list[Withheld] = field(default_factory=list)
    withheld_elsewhere: list[Withheld] = field(default_factory=list)

    @property
    def found(self) -> list[Found]:
        """Every record, in the order they are checked: the texts' first."""
        return [*self.in_texts, *self.elsewhere]

    @property
    def envelopes(self) -> list[Any]:
        return [f.envelope for f in self.found]

    @property
    def withheld(self) -> list[Withheld]:
        return [*self.withheld_texts, *self.withheld_elsewhere]


def read_guardrail_request(request: GuardrailRequest) -> GuardrailInput:
    """Find the records: in `texts`, and in the tool messages of `structured_messages` that no text repeats."""
    read = GuardrailInput()
    texts = request.texts or []
    for i, text in enumerate(texts):
        found, withheld = records_in_text(text, f"texts[{i}]", i, None)
        read.in_texts.extend(found)
        read.withheld_texts.extend(withheld)
    seen = set(texts)
    for m, message in enumerate(request.structured_messages or []):
        if not isinstance(message, dict) or message.get("role") not in TOOL_ROLES:
            continue
        content, where = message.get("content"), f"structured_messages[{m}].content"
        parts: list[tuple[Any, str]] = []
        if isinstance(content, list):
            for p, part in enumerate(content):
                is_text = isinstance(part, dict) and part.get("type") == "text"
                parts.append((part.get("text") if is_text else part, f"{where}[{p}]"))
        elif content is not None:
            parts.append((content, where))
        for value, place in parts:
            if isinstance(value, str) and value in seen:
                continue  # LiteLLM sent this content as a text too: it is read (and rewritten) there
            if isinstance(value, str):
                found, withheld = records_in_text(value, place, m, None)
            else:
                found, withheld = placed(read_value(value), place, m, None)
            read.elsewhere.extend(found)
            read.withheld_elsewhere.extend(withheld)
    return read


def answer(
    request: GuardrailRequest,
    found: GuardrailInput,
    result: CheckResult | None,
    on_block: Literal["withhold", "refuse"],
) -> GuardrailResponse:
    """The guardrail's answer once the records are decided (`result` None: nothing to check, maybe unreadable texts)."""
    decisions = list(result.decisions) if result is not None else []
    pairs = list(zip(found.found, decisions, strict=True))
    blocked = [(i, f, d) for i, (f, d) in enumerate(pairs) if d.action is Action.BLOCK]
    if not blocked and not found.withheld:
        return GuardrailResponse(action="NONE")
    why = []
    if blocked and result is not None:
        why.append(
            f"Freshguard blocked {len(blocked)} of {len(decisions)} records (run {result.run_id}): {summary(result)}"
        )
    if found.withheld:
        where = ", ".join(w.where for w in found.withheld[:5])
        why.append(
            f"Freshguard withheld {len(found.withheld)} texts that seem to hold records it cannot check one by one "
            f"({where}: {found.withheld[0].why.why})"
        )
    reason = "; ".join(why)
    if on_block == "refuse":
        return GuardrailResponse(action="BLOCKED", blocked_reason=reason)
    outside = found.withheld_elsewhere or any(i >= len(found.in_texts) for i, _, _ in blocked)
    if outside:
        return GuardrailResponse(
            action="BLOCKED", blocked_reason=reason + "; they sit in messages LiteLLM does not let a guardrail rewrite"
        )
    texts = list(request.texts or [])
    by_text: dict[int, list[tuple[Found, Decision]]] = {}
    for item, decision in pairs:
        assert item.message is not None  # noqa: S101 - records in texts always know their text
        by_text.setdefault(item.message, []).append((item, decision))
    for index, items in by_text.items():
        if any(d.action is Action.BLOCK for _, d in items):
            texts[index] = withheld_text(items)
    for unreadable in found.withheld_texts:
        texts[unreadable.message] = unreadable.why.notice()
    return GuardrailResponse(action="GUARDRAIL_INTERVENED", texts=texts)
