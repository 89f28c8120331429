"""The OpenAI-compatible gateway's request logic: where records sit in a chat request, and what is forwarded.

Pure (no HTTP, no FastAPI): `read_request` finds the records, `forwarded` builds the body sent upstream
once they are decided, `refusal` words a refused request. Records come from two places:

- `tool` messages whose content is JSON holding a record envelope or a list of them (what an agent's
  tools return), as a string or as text parts;
- the extension member `freshguard` (`extra_body={"freshguard": {...}}` with the `openai` client):
  `records` (context records to show the model), `pipeline` (the name its checks are kept under) and
  `on_block` (`withhold` or `refuse`). The gateway removes it before forwarding.

Under `withhold`, a blocked tool record is replaced where it stood by a notice the model can read
(`record withheld: customer C-1042 from sap is 3h old; ...`); context records become one system message
first in the conversation, with a notice for each blocked one. Under `refuse`, any blocked record refuses
the request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from guard import Action, CheckResult, Decision
from guard.guard import MAX_NAME_LENGTH
from guard.integrations.context import context_text_for, envelopes_in_text, notice, summary

OnBlock = Literal["withhold", "refuse"]
EXTENSION = "freshguard"
_ON_BLOCK = ("withhold", "refuse")


class GatewayInputError(ValueError):
    """A request the gateway cannot take; `param` says where (OpenAI's error `param`)."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Found:
    """A record found in a request, and where: in a tool message (a text part, a list position) or the extension."""

    envelope: dict[str, Any]
    where: str  # messages[3].content, messages[3].content[0].text, freshguard.records[1]
    message: int | None = None  # the tool message's index; None for a context record
    part: int | None = None  # the text part's index, when the content is a list of parts
    item: int | None = None  # the position in a list of envelopes; None when the text is one envelope


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """A chat request, read: the body to forward (without the extension) and the records it carries."""

    body: dict[str, Any]
    found: list[Found] = field(default_factory=list)
    pipeline: str | None = None
    on_block: OnBlock | None = None

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return [f.envelope for f in self.found]

    @property
    def streamed(self) -> bool:
        return self.body.get("stream") is True


def read_request(body: object) -> GatewayRequest:
    """Find the records of a chat completions request; GatewayInputError when it is not one."""
    if not isinstance(body, dict):
        raise GatewayInputError("the body must be a JSON object: a chat completions request", None)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise GatewayInputError("messages must be a list of chat messages", "messages")
    if not isinstance(body.get("model"), str):
        raise GatewayInputError("model must name the model to call, as a string", "model")
    forwarded = {name: value for name, value in body.items() if name != EXTENSION}
    extension = body.get(EXTENSION, {})
    if not isinstance(extension, dict):
        raise GatewayInputError(
            f"{EXTENSION} must be an object such as {{'records': [...], 'pipeline': ..., 'on_block': 'withhold'}}",
            EXTENSION,
        )
    found = _tool_records(messages) + _context_records(extension.get("records", []))
    return GatewayRequest(forwarded, found, _pipeline(extension.get("pipeline")), _on_block(extension.get("on_block")))


def _pipeline(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise GatewayInputError(
            f"{EXTENSION}.pipeline must be a name of 1 to {MAX_NAME_LENGTH} characters", f"{EXTENSION}.pipeline"
        )
    return value


def _on_block(value: object) -> OnBlock | None:
    if value is None:
        return None
    if value not in _ON_BLOCK:
        raise GatewayInputError(
            f"{EXTENSION}.on_block must be 'withhold' (replace a blocked record with a notice) or 'refuse', "
            f"not {value!r:.40}",
            f"{EXTENSION}.on_block",
        )
    return value  # type: ignore[return-value]  # one of _ON_BLOCK


def _context_records(records: object) -> list[Found]:
    if not isinstance(records, list):
        raise GatewayInputError(f"{EXTENSION}.records must be a list of record envelopes", f"{EXTENSION}.records")
    found = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise GatewayInputError(
                f"{EXTENSION}.records[{i}] must be a record envelope (a JSON object)", f"{EXTENSION}.records[{i}]"
            )
        found.append(Found(record, f"{EXTENSION}.records[{i}]"))
    return found


def _tool_records(messages: Sequence[Any]) -> list[Found]:
    found: list[Found] = []
    for m, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            continue
        content = message.get("content")
        if isinstance(content, str):
            found += records_in_text(content, f"messages[{m}].content", m, None)
        elif isinstance(content, list):
            for p, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "text":
                    found += records_in_text(part.get("text"), f"messages[{m}].content[{p}].text", m, p)
    return found


def records_in_text(text: object, where: str, message: int, part: int | None) -> list[Found]:
    """The records a text carries, each with where it sits (`message` is the text's index in its list)."""
    envelopes = envelopes_in_text(text)
    if envelopes is None:
        return []
    single = isinstance(text, str) and text.lstrip().startswith("{")
    if single:
        return [Found(envelopes[0], where, message, part, None)]
    return [Found(e, f"{where}[{i}]", message, part, i) for i, e in enumerate(envelopes)]


def forwarded(request: GatewayRequest, result: CheckResult | None) -> dict[str, Any]:
    """The body sent upstream: blocked tool records replaced by notices, context records as a system message."""
    if result is None:
        return request.body
    pairs = list(zip(request.found, result.decisions, strict=True))
    body: dict[str, Any] = json.loads(json.dumps(request.body))  # a deep copy of JSON values
    messages: list[Any] = body["messages"]
    by_text: dict[tuple[int, int | None], list[tuple[Found, Decision]]] = {}
    for found, decision in pairs:
        if found.message is not None:
            by_text.setdefault((found.message, found.part), []).append((found, decision))
    for (m, p), items in by_text.items():
        if all(d.action is not Action.BLOCK for _, d in items):
            continue  # nothing blocked here: the text is forwarded as the tool sent it
        text = withheld_text(items)
        if p is None:
            messages[m]["content"] = text
        else:
            messages[m]["content"][p]["text"] = text
    context = [(f.envelope, d) for f, d in pairs if f.message is None]
    if context:
        messages.insert(0, {"role": "system", "content": context_text_for(context, result, include_notices=True)})
    return body


def withheld_text(items: list[tuple[Found, Decision]]) -> str:
    """A text's records once decided: a notice for a lone blocked record, else the JSON list with notices in place."""
    if len(items) == 1 and items[0][0].item is None:
        return notice(items[0][1])
    return json.dumps(
        [found.envelope if d.action is not Action.BLOCK else notice(d) for found, d in items], ensure_ascii=False
    )


def refusal(request: GatewayRequest, result: CheckResult) -> tuple[str, str | None]:
    """Why a refused request was refused, in words, and where its first blocked record was (OpenAI's `param`)."""
    blocked = [(f, d) for f, d in zip(request.found, result.decisions, strict=True) if d.action is Action.BLOCK]
    where = ", ".join(f"{d.id} at {f.where}" for f, d in blocked[:5])
    message = (
        f"Freshguard refused this request: {len(blocked)} of {len(result.decisions)} records it carries are blocked "
        f"(run {result.run_id}; {where}): {summary(result)}. Refresh those records, or send "
        f"{EXTENSION}.on_block 'withhold' to let the model answer with notices in their place."
    )
    return message, blocked[0][0].where if blocked else None


def model_call(document: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(model, call id) of a chat completion or a chunk of one."""
    model, call_id = document.get("model"), document.get("id")
    return (model if isinstance(model, str) else None), (call_id if isinstance(call_id, str) else None)


def first_call_in_stream(buffer: bytes) -> tuple[tuple[str | None, str | None] | None, bytes]:
    """The (model, call id) of the first SSE data event in `buffer` that names one, and what is left unread.

    Returns (None, rest) while no complete event names a call yet; `rest` is the incomplete tail to keep.
    """
    *complete, rest = buffer.split(b"\n")
    for raw in complete:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            continue
        try:
            document = json.loads(data)
        except ValueError:
            continue
        if isinstance(document, dict):
            found = model_call(document)
            if found[1] is not None:
                return found, b""
    return None, rest
