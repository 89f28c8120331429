"""The OpenAI-compatible gateway's request logic: where records sit in a chat request, and what is forwarded.

Pure (no HTTP, no FastAPI): `read_request` finds the records, `forwarded` builds the body sent upstream
once they are decided, `refusal` words a refused request. Records come from two places:

- `tool` (and legacy `function`) messages whose content holds records, as a string or as text parts,
  read by the fail-closed rules of `guard.integrations.context` (a record, a list with a record in it,
  an object wrapping records one level deep); a tool text that seems to hold records the rules cannot
  take apart (JSON followed by prose, records nested deeper) is *unreadable*: withheld whole;
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from guard import Action, CheckResult, Decision
from guard.guard import MAX_NAME_LENGTH
from guard.integrations.context import (
    JsonPath,
    TextRecords,
    Unreadable,
    context_text_for,
    notice,
    path_text,
    read_text,
    read_value,
    replaced,
    summary,
)

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

    envelope: Any  # what is checked: a record-like object, or any item of a list that holds one
    where: str  # messages[3].content, messages[3].content[0].text.results[2], freshguard.records[1]
    message: int | None = None  # the tool message's index; None for a context record
    part: int | None = None  # the text part's index, when the content is a list of parts
    path: JsonPath = ()  # where the record sits in the text's JSON; () when the text is the record
    document: Any = None  # the text's JSON value (shared by every record found in that text)


@dataclass(frozen=True, slots=True)
class Withheld:
    """A tool text withheld whole, unchecked: it seems to hold records that cannot be read one by one."""

    where: str
    message: int
    part: int | None
    why: Unreadable


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """A chat request, read: the body to forward (without the extension) and the records it carries."""

    body: dict[str, Any]
    found: list[Found] = field(default_factory=list)
    pipeline: str | None = None
    on_block: OnBlock | None = None
    withheld: list[Withheld] = field(default_factory=list)

    @property
    def envelopes(self) -> list[Any]:
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
    found, withheld = _tool_records(messages)
    found += _context_records(extension.get("records", []))
    pipeline, on_block = _pipeline(extension.get("pipeline")), _on_block(extension.get("on_block"))
    return GatewayRequest(forwarded, found, pipeline, on_block, withheld)


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


#: The roles whose content is a tool's result (`function` is the legacy form of `tool`).
TOOL_ROLES = ("tool", "function")


def _tool_records(messages: Sequence[Any]) -> tuple[list[Found], list[Withheld]]:
    found: list[Found] = []
    withheld: list[Withheld] = []

    def take(read: TextRecords | Unreadable | None, where: str, m: int, p: int | None) -> None:
        records, unreadable = placed(read, where, m, p)
        found.extend(records)
        withheld.extend(unreadable)

    for m, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in TOOL_ROLES:
            continue
        content = message.get("content")
        if isinstance(content, str):
            take(read_text(content), f"messages[{m}].content", m, None)
        elif isinstance(content, list):
            for p, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "text":
                    take(read_text(part.get("text")), f"messages[{m}].content[{p}].text", m, p)
                elif not (isinstance(part, dict) and isinstance(part.get("type"), str)):
                    take(_as_unreadable(read_value(part)), f"messages[{m}].content[{p}]", m, p)
        elif content is not None:  # not a shape OpenAI takes, but a lenient upstream might show it to the model
            take(_as_unreadable(read_value(content)), f"messages[{m}].content", m, None)
    return found, withheld


def _as_unreadable(read: TextRecords | Unreadable | None) -> Unreadable | None:
    """Content that is not text but holds records: withheld whole (the gateway rewrites text, not other shapes)."""
    if isinstance(read, TextRecords):
        return Unreadable("records in a tool result that is not text")
    return read


def records_in_text(text: object, where: str, message: int, part: int | None) -> tuple[list[Found], list[Withheld]]:
    """The records a text carries, each with where it sits, or the text itself when it is unreadable."""
    return placed(read_text(text), where, message, part)


def placed(
    read: TextRecords | Unreadable | None, where: str, message: int, part: int | None
) -> tuple[list[Found], list[Withheld]]:
    """What `read_text` found in the text at `where`, as records found there or the text withheld."""
    if isinstance(read, Unreadable):
        return [], [Withheld(where, message, part, read)]
    if isinstance(read, TextRecords):
        records = [Found(record, f"{where}{path_text(path)}", message, part, path, read.document)
                   for path, record in read.records]  # fmt: skip
        return records, []
    return [], []


def forwarded(request: GatewayRequest, result: CheckResult | None) -> dict[str, Any]:
    """The body sent upstream: blocked tool records and unreadable texts replaced by notices, context records
    as a system message."""
    if result is None and not request.withheld:
        return request.body
    pairs = list(zip(request.found, result.decisions, strict=True)) if result is not None else []
    body: dict[str, Any] = json.loads(json.dumps(request.body))  # a deep copy of JSON values
    messages: list[Any] = body["messages"]
    by_text: dict[tuple[int, int | None], list[tuple[Found, Decision]]] = {}
    for found, decision in pairs:
        if found.message is not None:
            by_text.setdefault((found.message, found.part), []).append((found, decision))
    rewritten: dict[tuple[int, int | None], str] = {}
    for place, items in by_text.items():
        if any(d.action is Action.BLOCK for _, d in items):
            rewritten[place] = withheld_text(items)  # else the text is forwarded as the tool sent it
    for unreadable in request.withheld:
        rewritten[(unreadable.message, unreadable.part)] = unreadable.why.notice()
    for (m, p), text in rewritten.items():
        if p is None:
            messages[m]["content"] = text
        elif isinstance(messages[m]["content"][p], dict) and messages[m]["content"][p].get("type") == "text":
            messages[m]["content"][p]["text"] = text
        else:
            messages[m]["content"][p] = {"type": "text", "text": text}
    context = [(f.envelope, d) for f, d in pairs if f.message is None]
    if context and result is not None:
        messages.insert(0, {"role": "system", "content": context_text_for(context, result, include_notices=True)})
    return body


def withheld_text(items: list[tuple[Found, Decision]]) -> str:
    """A text's records once decided: a notice for a lone blocked record, else its JSON with notices in place."""
    if len(items) == 1 and items[0][0].path == ():
        return notice(items[0][1])
    blocked = [(found.path, notice(d)) for found, d in items if d.action is Action.BLOCK]
    return json.dumps(replaced(items[0][0].document, blocked), ensure_ascii=False)


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
