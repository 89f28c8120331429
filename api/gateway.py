"""The OpenAI-compatible gateway's request logic: where records sit in a request, and what is forwarded.

Pure (no HTTP, no FastAPI): `read_request` finds the records of a chat completions or Responses API
request, `forwarded` builds the body sent upstream once they are decided, `refusal` words a refused
request. Records come from two places:

- tool results (chat `tool` and legacy `function` messages; Responses `function_call_output` items),
  read by the rules every integration shares (`guard.integrations.tool_results`): a tool text that seems
  to hold records the rules cannot take apart (JSON followed by prose, records nested deeper) is
  withheld whole;
- the extension member `freshguard` (`extra_body={"freshguard": {...}}` with the `openai` client):
  `records` (context records to show the model), `pipeline` (the name its checks are kept under) and
  `on_block` (`withhold` or `refuse`). The gateway removes it before forwarding.

Under `withhold`, a blocked tool record is replaced where it stood by a notice the model can read
(`record withheld: customer C-2001 from sap (STALE: 3h 5m old, the limit is 1h)`: the entity and the
reason codes, never the record's values), an unreadable text by a notice saying why; context records
become one system message first in the conversation, with a notice for each blocked one. Under
`refuse`, any blocked record or unreadable text refuses the request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from guard import Action, CheckResult
from guard.integrations.context import summary
from guard.integrations.tool_results import (
    CHAT,
    RESPONSES,
    Carried,
    Found,
    RequestShape,
    Withheld,
    guarded_request,
    read_tool_results,
)
from guard.limits import MAX_NAME_LENGTH

OnBlock = Literal["withhold", "refuse"]
EXTENSION = "freshguard"
_ON_BLOCK = ("withhold", "refuse")


class GatewayInputError(ValueError):
    """A request the gateway cannot take; `param` says where (OpenAI's error `param`)."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """A model request, read: the body to forward (without the extension) and the records it carries."""

    body: dict[str, Any]
    shape: RequestShape = CHAT
    carried: Carried = field(default_factory=Carried)
    pipeline: str | None = None
    on_block: OnBlock | None = None

    @property
    def found(self) -> list[Found]:
        return self.carried.found

    @property
    def withheld(self) -> list[Withheld]:
        return self.carried.withheld

    @property
    def envelopes(self) -> list[Any]:
        return self.carried.envelopes

    @property
    def streamed(self) -> bool:
        return self.body.get("stream") is True


def read_request(body: object, shape: RequestShape = CHAT) -> GatewayRequest:
    """Find the records of a chat completions (or Responses API) request; GatewayInputError when it is not one."""
    what = "a chat completions request" if shape is CHAT else "a Responses API request"
    if not isinstance(body, dict):
        raise GatewayInputError(f"the body must be a JSON object: {what}", None)
    items = body.get(shape.items)
    if shape is CHAT and not isinstance(items, list):
        raise GatewayInputError("messages must be a list of chat messages", "messages")
    if shape is RESPONSES and not isinstance(items, list | str | None):
        raise GatewayInputError("input must be a text or a list of input items", "input")
    if not isinstance(body.get("model"), str):
        raise GatewayInputError("model must name the model to call, as a string", "model")
    forwarded_body = {name: value for name, value in body.items() if name != EXTENSION}
    extension = body.get(EXTENSION, {})
    if not isinstance(extension, dict):
        raise GatewayInputError(
            f"{EXTENSION} must be an object such as {{'records': [...], 'pipeline': ..., 'on_block': 'withhold'}}",
            EXTENSION,
        )
    carried = read_tool_results(items, shape).with_context(_context_records(extension.get("records", [])),
                                                           f"{EXTENSION}.records")  # fmt: skip
    pipeline, on_block = _pipeline(extension.get("pipeline")), _on_block(extension.get("on_block"))
    return GatewayRequest(forwarded_body, shape, carried, pipeline, on_block)


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


def _context_records(records: object) -> list[dict[str, Any]]:
    if not isinstance(records, list):
        raise GatewayInputError(f"{EXTENSION}.records must be a list of record envelopes", f"{EXTENSION}.records")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise GatewayInputError(
                f"{EXTENSION}.records[{i}] must be a record envelope (a JSON object)", f"{EXTENSION}.records[{i}]"
            )
    return records


def forwarded(request: GatewayRequest, result: CheckResult | None) -> dict[str, Any]:
    """The body sent upstream: blocked tool records and unreadable texts replaced by notices, context records
    as a system message (with a notice for each blocked one)."""
    return guarded_request(request.body, request.shape, request.carried, result, include_notices=True)


def refusal(request: GatewayRequest, result: CheckResult | None) -> tuple[str, str | None]:
    """Why a refused request was refused, in words, and where its first withheld item was (OpenAI's `param`).

    For operators and the calling application (not the model): it quotes the reasons in full.
    """
    decisions = result.decisions if result is not None else []
    blocked = [(f, d) for f, d in zip(request.found, decisions, strict=True) if d.action is Action.BLOCK]
    parts = []
    if blocked and result is not None:
        where = ", ".join(f"{d.id} at {f.where}" for f, d in blocked[:5])
        parts.append(
            f"{len(blocked)} of {len(result.decisions)} records it carries are blocked "
            f"(run {result.run_id}; {where}): {summary(result)}"
        )
    if request.withheld:
        where = ", ".join(w.where for w in request.withheld[:5])
        parts.append(
            f"{len(request.withheld)} tool results seem to hold records it cannot check one by one ({where}: "
            f"{request.withheld[0].why.why}); return records as JSON alone"
        )
    message = (
        f"Freshguard refused this request: {'; and '.join(parts)}. Refresh or fix those records, or send "
        f"{EXTENSION}.on_block 'withhold' to let the model answer with notices in their place."
    )
    first = blocked[0][0].where if blocked else (request.withheld[0].where if request.withheld else None)
    return message, first


def model_call(document: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(model, call id) of a chat completion, a chunk of one, a response, or a Responses stream event."""
    inner = document.get("response")
    if isinstance(inner, Mapping):  # response.created and the other lifecycle events carry the response
        document = inner
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
