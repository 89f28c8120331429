"""Records in a model request's tool results: where they sit, and the request to send once they are decided.

One definition for every path to a model: the in-process OpenAI wrapper (`guard.integrations.openai`),
the service's OpenAI-compatible gateway and its LiteLLM guardrail endpoint all read and rewrite requests
here. Two request shapes are known:

- chat completions: `messages` whose role is `tool` (or the legacy `function`), the result in `content`,
  as a string or a list of `{"type": "text", "text": ...}` parts;
- the Responses API: `input` items of type `function_call_output` (or `custom_tool_call_output`), the
  result in `output`, as a string or a list of `{"type": "input_text", "text": ...}` parts.

Each text is read by the fail-closed rules of `guard.integrations.context` (a record, a list holding one,
an object wrapping records one level deep); a text that seems to hold records those rules cannot take
apart is *withheld* whole, and a result that is not text but holds records is withheld too. Once the
records are decided, `guarded_request` replaces each blocked record where it stood by a notice the
model can read (entity and reason codes, never the record's values) and each withheld text by a
notice saying why, and puts the context records (those passed beside the conversation) first, as one
system message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guard import Action, CheckResult, Decision
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
)

#: The chat roles whose content is a tool's result (`function` is the legacy form of `tool`).
TOOL_ROLES = ("tool", "function")
#: The Responses API input items that carry a tool's result.
TOOL_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")


@dataclass(frozen=True, slots=True)
class RequestShape:
    """Where a kind of model request keeps its conversation and its tool results."""

    endpoint: str  # chat.completions | responses: named in lineage links
    items: str  # the member holding the conversation: messages | input
    result: str  # the member of a tool result item holding its text: content | output
    text_part: str  # the type of a text part in a tool result: text | input_text

    def holds_tool_result(self, item: Mapping[str, Any]) -> bool:
        """Whether a conversation item is a tool's result."""
        if self.items == "messages":
            return item.get("role") in TOOL_ROLES
        return item.get("type") in TOOL_OUTPUT_TYPES


CHAT = RequestShape("chat.completions", "messages", "content", "text")
RESPONSES = RequestShape("responses", "input", "output", "input_text")


@dataclass(frozen=True, slots=True)
class Found:
    """A record found in a request, and where: in a tool result (a text part, a list position) or beside it."""

    envelope: Any  # what is checked: a record-like object, or any item of a list that holds one
    where: str  # messages[3].content, input[2].output[0].text.results[2], freshguard.records[1]
    message: int | None = None  # the tool result item's index; None for a context record
    part: int | None = None  # the text part's index, when the result is a list of parts
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
class Carried:
    """What a request carries: records (tool results' first, then context records) and texts withheld whole."""

    found: list[Found] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)

    @property
    def envelopes(self) -> list[Any]:
        """What is checked, in order."""
        return [f.envelope for f in self.found]

    def with_context(self, records: Sequence[Any], where: str) -> Carried:
        """These records, with `records` added as context records (`<where>[i]`)."""
        context = [Found(record, f"{where}[{i}]") for i, record in enumerate(records)]
        return Carried([*self.found, *context], self.withheld)


def plain(item: Any) -> Any:
    """A conversation item as JSON values: a pydantic model (an `openai` type) dumped, anything else as it is."""
    dump = getattr(item, "model_dump", None)
    if not isinstance(item, Mapping) and callable(dump):
        return dump(mode="json", exclude_unset=True)
    return item


def read_tool_results(items: object, shape: RequestShape) -> Carried:
    """The records in a conversation's tool results, and the texts to withhold whole."""
    carried = Carried()
    if not isinstance(items, list | tuple):
        return carried
    for m, raw in enumerate(items):
        item = plain(raw)
        if not isinstance(item, Mapping) or not shape.holds_tool_result(item):
            continue
        where = f"{shape.items}[{m}].{shape.result}"
        content = item.get(shape.result)
        if isinstance(content, str):
            _take(carried, read_text(content), where, m, None)
        elif isinstance(content, list):
            for p, part in enumerate(content):
                if isinstance(part, Mapping) and part.get("type") == shape.text_part:
                    _take(carried, read_text(part.get("text")), f"{where}[{p}].text", m, p)
                elif not (isinstance(part, Mapping) and isinstance(part.get("type"), str)):
                    _take(carried, _as_unreadable(read_value(part)), f"{where}[{p}]", m, p)
        elif content is not None:  # not a shape OpenAI takes, but a lenient upstream might show it to the model
            _take(carried, _as_unreadable(read_value(content)), where, m, None)
    return carried


def _take(carried: Carried, read: TextRecords | Unreadable | None, where: str, m: int, p: int | None) -> None:
    found, withheld = placed(read, where, m, p)
    carried.found.extend(found)
    carried.withheld.extend(withheld)


def _as_unreadable(read: TextRecords | Unreadable | None) -> Unreadable | None:
    """A result that is not text but holds records: withheld whole (only text is rewritten in place)."""
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


def withheld_text(items: Sequence[tuple[Found, Decision]]) -> str:
    """A text's records once decided: a notice for a lone blocked record, else its JSON with notices in place."""
    if len(items) == 1 and items[0][0].path == ():
        return notice(items[0][1])
    blocked = [(found.path, notice(d)) for found, d in items if d.action is Action.BLOCK]
    return json.dumps(replaced(items[0][0].document, blocked), ensure_ascii=False)


def blocks_anything(carried: Carried, result: CheckResult | None) -> bool:
    """Whether the guard withholds anything from this request: a blocked record or a text withheld whole."""
    return bool(carried.withheld) or (result is not None and bool(result.blocked))


def guarded_request(
    request: Mapping[str, Any],
    shape: RequestShape,
    carried: Carried,
    result: CheckResult | None,
    *,
    include_notices: bool = True,
) -> dict[str, Any]:
    """The request to send: blocked tool records and withheld texts replaced by notices, context records first.

    Only the items it rewrites are copied: the rest of `request` is passed on as it is.
    """
    pairs = list(zip(carried.found, result.decisions, strict=True)) if result is not None else []
    items = request.get(shape.items)
    conversation: list[Any] = list(items) if isinstance(items, list | tuple) else []
    by_text: dict[tuple[int, int | None], list[tuple[Found, Decision]]] = {}
    for found, decision in pairs:
        if found.message is not None:
            by_text.setdefault((found.message, found.part), []).append((found, decision))
    rewritten: dict[tuple[int, int | None], str] = {}
    for place, decided in by_text.items():
        if any(d.action is Action.BLOCK for _, d in decided):
            rewritten[place] = withheld_text(decided)  # else the text is sent as the tool gave it
    for unreadable in carried.withheld:
        rewritten[(unreadable.message, unreadable.part)] = unreadable.why.notice()
    for (m, p), text in rewritten.items():
        conversation[m] = _with_text(conversation[m], shape, p, text)
    context = [(f.envelope, d) for f, d in pairs if f.message is None]
    sent = dict(request)
    if context and result is not None:
        message = {"role": "system", "content": context_text_for(context, result, include_notices=include_notices)}
        if isinstance(items, str):  # a Responses input given as text: the user's message
            conversation = [{"role": "user", "content": items}]
        conversation.insert(0, message)
    if rewritten or context:
        sent[shape.items] = conversation
    return sent


def _with_text(item: Any, shape: RequestShape, part: int | None, text: str) -> dict[str, Any]:
    """A copy of a tool result item whose text (or text part `part`) is `text`."""
    copy: dict[str, Any] = json.loads(json.dumps(plain(item), default=str))
    if part is None:
        copy[shape.result] = text
    elif isinstance(copy[shape.result][part], dict) and copy[shape.result][part].get("type") == shape.text_part:
        copy[shape.result][part]["text"] = text
    else:
        copy[shape.result][part] = {"type": shape.text_part, "text": text}
    return copy
