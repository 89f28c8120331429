"""OpenAI (the `openai` package): a client whose calls guard their context records first.

    from openai import OpenAI
    from guard.integrations.openai import guard_openai

    client = guard_openai(OpenAI(), checker=guard, pipeline="support-bot")
    response = client.chat.completions.create(model="gpt-4o", records=records, messages=[...])
    response = client.responses.create(model="gpt-4o", records=records, input="What is Ana's credit limit?")

`records` are checked before the call; the model is sent the allowed ones only, as a system message
that names each record's entity, source and time (and, with `include_notices=True`, a line
`record withheld: <entity> (<codes>: <why, without the record's values>)` for each blocked one). The
model call (response id, model) is then linked to the check's run in the lineage store, with
`extra={"integration": "openai", "endpoint": ...}`; a streamed call is linked on its first chunk. The
link is best-effort: when it fails the response is still returned, and the failure is logged and
warned about (`guard.integrations.checking.LinkWarning`). A record that is not a mapping is passed to
the checker as it is, which decides it INVALID_RECORD. `min_allowed` raises `BlockedContextError` before the call
instead of asking the model with fewer records than that. `create_checked` returns the response and
the `CheckResult` together. `AsyncOpenAI` works the same (`guard_openai` returns the async wrapper).

Install with `pip install 'freshguard[openai]'`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from openai import AsyncOpenAI, AsyncStream, OpenAI, Stream

from guard import CheckResult, Record
from guard.integrations.checking import (
    Checker,
    acheck_records,
    atry_link_call,
    check_records,
    enforce_floor,
    try_link_call,
)
from guard.integrations.context import context_text

INTEGRATION = "openai"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Checked(Generic[_T]):
    """A model call's response and the check its context records went through (None: no records)."""

    response: _T
    check: CheckResult | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """How records are guarded: shared by the sync and async wrappers."""

    checker: Checker
    pipeline: str
    min_allowed: int
    include_notices: bool

    def context(self, envelopes: Sequence[Any], result: CheckResult) -> dict[str, str]:
        enforce_floor(result, self.min_allowed)
        return {"role": "system", "content": context_text(envelopes, result, include_notices=self.include_notices)}


def _envelopes(records: Iterable[Any]) -> list[Any]:
    """The records as the checker takes them: a `Record` as its envelope, a mapping copied, anything else as it is
    (the checker decides it INVALID_RECORD)."""
    return [r.to_envelope() if isinstance(r, Record) else dict(r) if isinstance(r, Mapping) else r for r in records]


def _prepend(context: Mapping[str, str] | None, messages: list[Any]) -> list[Any]:
    return messages if context is None else [dict(context), *messages]


def _with_context(input_: Any, context: Mapping[str, str]) -> list[Any]:
    """Responses API input with the context message first (a text input becomes the user's message)."""
    items = [{"role": "user", "content": input_}] if isinstance(input_, str) else list(input_ or [])
    return [dict(context), *items]


def _call_of(item: Any) -> tuple[str | None, str | None]:
    """(model, call id) of a response, a chat chunk, or a Responses stream event that carries them."""
    inner = getattr(item, "response", None)  # Responses stream events: response.created carries the response
    source = inner if inner is not None and getattr(inner, "id", None) else item
    model, call_id = getattr(source, "model", None), getattr(source, "id", None)
    return (str(model) if model else None), (str(call_id) if call_id else None)


class _LinkedStream(Generic[_T]):
    """A model's stream, passed through as it comes; its call is linked to the run on the first chunk with an id."""

    def __init__(self, stream: Stream[_T], link: Any) -> None:
        self._stream = stream
        self._link = link
        self.response = stream.response

    def __iter__(self) -> Iterator[_T]:
        for item in self._stream:
            if self._link is not None:
                model, call_id = _call_of(item)
                if call_id is not None:
                    link, self._link = self._link, None
                    link(model, call_id)
            yield item

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _LinkedStream[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncLinkedStream(Generic[_T]):
    """`_LinkedStream` for the async client."""

    def __init__(self, stream: AsyncStream[_T], link: Any) -> None:
        self._stream = stream
        self._link = link
        self.response = stream.response

    async def __aiter__(self) -> AsyncIterator[_T]:
        async for item in self._stream:
            if self._link is not None:
                model, call_id = _call_of(item)
                if call_id is not None:
                    link, self._link = self._link, None
                    await link(model, call_id)
            yield item

    async def close(self) -> None:
        await self._stream.close()

    async def __aenter__(self) -> _AsyncLinkedStream[_T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class GuardedOpenAI:
    """An `OpenAI` client whose `chat.completions.create` and `responses.create` take `records` and guard them."""

    def __init__(
        self,
        client: OpenAI,
        checker: Checker,
        *,
        pipeline: str,
        min_allowed: int = 0,
        include_notices: bool = False,
    ) -> None:
        self.client = client
        self._plan = _Plan(checker, pipeline, min_allowed, include_notices)
        self.chat = _Chat(self)
        self.responses = _Responses(self)

    def _call(self, endpoint: str, records: Iterable[Any], send: Any) -> Checked[Any]:
        envelopes = _envelopes(records)
        plan = self._plan
        if not envelopes:
            return Checked(send(None), None)
        result = check_records(plan.checker, envelopes, pipeline=plan.pipeline)
        response = send(plan.context(envelopes, result))

        def link(model: str | None, call_id: str | None) -> None:
            try_link_call(plan.checker, result.run_id, model=model or "unknown", call_id=call_id,
                          integration=INTEGRATION, extra={"endpoint": endpoint, "stream": streamed})  # fmt: skip

        streamed = isinstance(response, Stream)
        if streamed:
            return Checked(_LinkedStream(response, link), result)
        link(*_call_of(response))
        return Checked(response, result)


class _Chat:
    def __init__(self, owner: GuardedOpenAI) -> None:
        self.completions = _ChatCompletions(owner)


class _ChatCompletions:
    def __init__(self, owner: GuardedOpenAI) -> None:
        self._owner = owner

    def create_checked(self, *, records: Iterable[Any], messages: Iterable[Any], **kwargs: Any) -> Checked[Any]:
        """`create`, returning the response together with the check (`.response`, `.check`)."""
        sent: list[Any] = list(messages)
        completions = self._owner.client.chat.completions

        def send(context: dict[str, str] | None) -> Any:
            return completions.create(messages=_prepend(context, sent), **kwargs)

        return self._owner._call("chat.completions", records, send)

    def create(self, *, records: Iterable[Any], messages: Iterable[Any], **kwargs: Any) -> Any:
        """`client.chat.completions.create(...)` with the allowed `records` as context; the same return value."""
        return self.create_checked(records=records, messages=messages, **kwargs).response


class _Responses:
    def __init__(self, owner: GuardedOpenAI) -> None:
        self._owner = owner

    def create_checked(self, *, records: Iterable[Any], input: Any = None, **kwargs: Any) -> Checked[Any]:  # noqa: A002
        """`create`, returning the response together with the check (`.response`, `.check`)."""
        responses = self._owner.client.responses

        def send(context: dict[str, str] | None) -> Any:
            given = {} if input is None else {"input": input}
            sent = given if context is None else {"input": _with_context(input, context)}
            return responses.create(**sent, **kwargs)

        return self._owner._call("responses", records, send)

    def create(self, *, records: Iterable[Any], input: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        """`client.responses.create(...)` with the allowed `records` as context; the same return value."""
        return self.create_checked(records=records, input=input, **kwargs).response


class GuardedAsyncOpenAI:
    """`GuardedOpenAI` for an `AsyncOpenAI` client: the same calls, awaited."""

    def __init__(
        self,
        client: AsyncOpenAI,
        checker: Checker,
        *,
        pipeline: str,
        min_allowed: int = 0,
        include_notices: bool = False,
    ) -> None:
        self.client = client
        self._plan = _Plan(checker, pipeline, min_allowed, include_notices)
        self.chat = _AsyncChat(self)
        self.responses = _AsyncResponses(self)

    async def _call(self, endpoint: str, records: Iterable[Any], send: Any) -> Checked[Any]:
        envelopes = _envelopes(records)
        plan = self._plan
        if not envelopes:
            return Checked(await send(None), None)
        result = await acheck_records(plan.checker, envelopes, pipeline=plan.pipeline)
        response = await send(plan.context(envelopes, result))

        async def link(model: str | None, call_id: str | None) -> None:
            await atry_link_call(plan.checker, result.run_id, model=model or "unknown", call_id=call_id,
                                 integration=INTEGRATION, extra={"endpoint": endpoint, "stream": streamed})  # fmt: skip

        streamed = isinstance(response, AsyncStream)
        if streamed:
            return Checked(_AsyncLinkedStream(response, link), result)
        await link(*_call_of(response))
        return Checked(response, result)


class _AsyncChat:
    def __init__(self, owner: GuardedAsyncOpenAI) -> None:
        self.completions = _AsyncChatCompletions(owner)


class _AsyncChatCompletions:
    def __init__(self, owner: GuardedAsyncOpenAI) -> None:
        self._owner = owner

    async def create_checked(self, *, records: Iterable[Any], messages: Iterable[Any], **kwargs: Any) -> Checked[Any]:
        """`create`, returning the response together with the check (`.response`, `.check`)."""
        sent: list[Any] = list(messages)
        completions = self._owner.client.chat.completions

        async def send(context: dict[str, str] | None) -> Any:
            return await completions.create(messages=_prepend(context, sent), **kwargs)

        return await self._owner._call("chat.completions", records, send)

    async def create(self, *, records: Iterable[Any], messages: Iterable[Any], **kwargs: Any) -> Any:
        """`await client.chat.completions.create(...)` with the allowed `records` as context."""
        return (await self.create_checked(records=records, messages=messages, **kwargs)).response


class _AsyncResponses:
    def __init__(self, owner: GuardedAsyncOpenAI) -> None:
        self._owner = owner

    async def create_checked(self, *, records: Iterable[Any], input: Any = None, **kwargs: Any) -> Checked[Any]:  # noqa: A002
        """`create`, returning the response together with the check (`.response`, `.check`)."""
        responses = self._owner.client.responses

        async def send(context: dict[str, str] | None) -> Any:
            given = {} if input is None else {"input": input}
            sent = given if context is None else {"input": _with_context(input, context)}
            return await responses.create(**sent, **kwargs)

        return await self._owner._call("responses", records, send)

    async def create(self, *, records: Iterable[Any], input: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        """`await client.responses.create(...)` with the allowed `records` as context."""
        return (await self.create_checked(records=records, input=input, **kwargs)).response


@overload
def guard_openai(
    client: OpenAI, checker: Checker, *, pipeline: str, min_allowed: int = 0, include_notices: bool = False
) -> GuardedOpenAI: ...
@overload
def guard_openai(
    client: AsyncOpenAI, checker: Checker, *, pipeline: str, min_allowed: int = 0, include_notices: bool = False
) -> GuardedAsyncOpenAI: ...
def guard_openai(
    client: OpenAI | AsyncOpenAI,
    checker: Checker,
    *,
    pipeline: str,
    min_allowed: int = 0,
    include_notices: bool = False,
) -> GuardedOpenAI | GuardedAsyncOpenAI:
    """Wrap an `OpenAI` or `AsyncOpenAI` client so its calls guard the `records` they are given."""
    options: dict[str, Any] = {"pipeline": pipeline, "min_allowed": min_allowed, "include_notices": include_notices}
    if isinstance(client, AsyncOpenAI):
        return GuardedAsyncOpenAI(client, checker, **options)
    if isinstance(client, OpenAI):
        return GuardedOpenAI(client, checker, **options)
    raise TypeError(f"guard_openai wraps an openai.OpenAI or openai.AsyncOpenAI client, not {type(client).__name__}")
