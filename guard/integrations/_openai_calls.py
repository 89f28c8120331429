"""The guarded calls of one `openai` resource (`chat.completions`, `responses`): `create`, `parse`, `stream`.

Each call reads the request's tool results and the `records=` it is given, checks them all in one run,
sends the request with blocked records and unreadable texts replaced by notices (the gateway's rules,
`guard.integrations.tool_results`), and links the model call to the run. A call that carries no record
is sent as it is and checks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from guard import CheckResult, Record
from guard.integrations._openai_links import AsyncGuardedContext, AsyncLink, Link, alinked, linked
from guard.integrations.checking import (
    Checker,
    acheck_records,
    atry_link_call,
    check_records,
    enforce_floor,
    try_link_call,
)
from guard.integrations.tool_results import Carried, RequestShape, guarded_request, read_tool_results

INTEGRATION = "openai"
_log = logging.getLogger("freshguard.integrations")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Checked(Generic[_T]):
    """A model call's response and the check its records went through (None: the call carried no record)."""

    response: _T
    check: CheckResult | None


def _envelopes(records: Iterable[Any]) -> list[Any]:
    """The records as the checker takes them: a `Record` as its envelope, a mapping copied, anything else as it is
    (the checker decides it INVALID_RECORD)."""
    return [r.to_envelope() if isinstance(r, Record) else dict(r) if isinstance(r, Mapping) else r for r in records]


@dataclass(frozen=True, slots=True)
class Plan:
    """How calls are guarded: the checker, the pipeline its checks are kept under, the floor, the notices."""

    checker: Checker
    pipeline: str
    min_allowed: int = 0
    include_notices: bool = False

    def read(self, shape: RequestShape, request: Mapping[str, Any], records: Iterable[Any] | None) -> Carried:
        """The records a request carries: its tool results' first, then the context `records`."""
        carried = read_tool_results(request.get(shape.items), shape).with_context(_envelopes(records or ()), "records")
        for unreadable in carried.withheld:
            _log.warning("openai: %s withheld unchecked: %s", unreadable.where, unreadable.why.why)
        return carried

    def request(
        self, shape: RequestShape, request: Mapping[str, Any], carried: Carried, result: CheckResult | None
    ) -> dict[str, Any]:
        """The request to send once its records are decided; `BlockedContextError` below the floor."""
        if result is not None:
            enforce_floor(result, self.min_allowed)
        return guarded_request(request, shape, carried, result, include_notices=self.include_notices)

    def link(self, result: CheckResult, shape: RequestShape, sent: Mapping[str, Any], *, streamed: bool) -> Link:
        requested, extra = sent.get("model"), {"endpoint": shape.endpoint, "stream": streamed}

        def link(model: str | None, call_id: str | None) -> None:
            try_link_call(self.checker, result.run_id, model=model or str(requested or "unknown"), call_id=call_id,
                          integration=INTEGRATION, extra=extra)  # fmt: skip

        return link

    def alink(self, result: CheckResult, shape: RequestShape, sent: Mapping[str, Any], *, streamed: bool) -> AsyncLink:
        requested, extra = sent.get("model"), {"endpoint": shape.endpoint, "stream": streamed}

        async def link(model: str | None, call_id: str | None) -> None:
            await atry_link_call(self.checker, result.run_id, model=model or str(requested or "unknown"),
                                 call_id=call_id, integration=INTEGRATION, extra=extra)  # fmt: skip

        return link


def _requested(sent: Mapping[str, Any]) -> str | None:
    model = sent.get("model")
    return model if isinstance(model, str) else None


class _Passing:
    """Every member not guarded here is the resource's own."""

    _resource: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._resource, name)


class GuardedCalls(_Passing):
    """A resource of the `OpenAI` client whose calls guard their records; every other member passed through."""

    def __init__(self, resource: Any, plan: Plan, shape: RequestShape, *, deferred: bool = False) -> None:
        self._resource = resource  # `deferred` is the async client's concern: sync calls are made when called
        self._plan = plan
        self._shape = shape

    def create_checked(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Checked[Any]:
        """`create`, returning the response together with the check (`.response`, `.check`)."""
        return self._call("create", records, kwargs)

    def create(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """The client's `create`, with tool results guarded and `records` (if any) as context first."""
        return self._call("create", records, kwargs).response

    def parse(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """The client's `parse` (structured outputs), guarded as `create` is."""
        return self._call("parse", records, kwargs).response

    def stream(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """The client's `stream` helper, guarded as `create` is; linked on its first event."""
        return self._call("stream", records, kwargs).response

    @property
    def with_raw_response(self) -> GuardedCalls:
        """The same calls, answering the raw HTTP response (`.parse()` gives the model's answer)."""
        return GuardedCalls(self._resource.with_raw_response, self._plan, self._shape)

    @property
    def with_streaming_response(self) -> GuardedCalls:
        """The same calls, answering a context manager over the streamed HTTP response."""
        return GuardedCalls(self._resource.with_streaming_response, self._plan, self._shape)

    def _call(self, method: str, records: Iterable[Any] | None, kwargs: dict[str, Any]) -> Checked[Any]:
        plan, shape = self._plan, self._shape
        carried = plan.read(shape, kwargs, records)
        result = check_records(plan.checker, carried.envelopes, pipeline=plan.pipeline) if carried.found else None
        sent = plan.request(shape, kwargs, carried, result)
        response = getattr(self._resource, method)(**sent)
        if result is None:
            return Checked(response, None)
        streamed = method == "stream" or sent.get("stream") is True
        link = plan.link(result, shape, sent, streamed=streamed)
        return Checked(linked(response, link, requested=_requested(sent), streamed=streamed), result)


class AsyncGuardedCalls(_Passing):
    """`GuardedCalls` for the `AsyncOpenAI` client: the same calls, awaited."""

    def __init__(self, resource: Any, plan: Plan, shape: RequestShape, *, deferred: bool = False) -> None:
        self._resource = resource
        self._plan = plan
        self._shape = shape
        self._deferred = deferred  # with_streaming_response: calls answer an async context manager

    async def create_checked(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Checked[Any]:
        """`create`, returning the response together with the check (`.response`, `.check`)."""
        return await self._call("create", records, kwargs)

    def create(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """The client's `create`, with tool results guarded and `records` (if any) as context first."""
        if self._deferred:
            return self._context("create", records, kwargs)
        return self._answer("create", records, kwargs)

    def parse(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """The client's `parse` (structured outputs), guarded as `create` is."""
        if self._deferred:
            return self._context("parse", records, kwargs)
        return self._answer("parse", records, kwargs)

    def stream(self, *, records: Iterable[Any] | None = None, **kwargs: Any) -> AsyncGuardedContext:
        """The client's `stream` helper (`async with`), guarded when entered; linked on its first event."""
        return self._context("stream", records, kwargs)

    @property
    def with_raw_response(self) -> AsyncGuardedCalls:
        """The same calls, answering the raw HTTP response (`.parse()` gives the model's answer)."""
        return AsyncGuardedCalls(self._resource.with_raw_response, self._plan, self._shape)

    @property
    def with_streaming_response(self) -> AsyncGuardedCalls:
        """The same calls, answering an async context manager over the streamed HTTP response."""
        return AsyncGuardedCalls(self._resource.with_streaming_response, self._plan, self._shape, deferred=True)

    async def _answer(self, method: str, records: Iterable[Any] | None, kwargs: dict[str, Any]) -> Any:
        return (await self._call(method, records, kwargs)).response

    async def _guard(
        self, records: Iterable[Any] | None, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], CheckResult | None]:
        plan, shape = self._plan, self._shape
        carried = plan.read(shape, kwargs, records)
        result = None
        if carried.found:
            result = await acheck_records(plan.checker, carried.envelopes, pipeline=plan.pipeline)
        return plan.request(shape, kwargs, carried, result), result

    async def _call(self, method: str, records: Iterable[Any] | None, kwargs: dict[str, Any]) -> Checked[Any]:
        sent, result = await self._guard(records, kwargs)
        response = await getattr(self._resource, method)(**sent)
        if result is None:
            return Checked(response, None)
        streamed = sent.get("stream") is True
        link = self._plan.alink(result, self._shape, sent, streamed=streamed)
        return Checked(await alinked(response, link, requested=_requested(sent), streamed=streamed), result)

    def _context(self, method: str, records: Iterable[Any] | None, kwargs: dict[str, Any]) -> AsyncGuardedContext:
        async def open_() -> tuple[Any, AsyncLink | None, str | None]:
            sent, result = await self._guard(records, kwargs)
            manager = getattr(self._resource, method)(**sent)
            streamed = method == "stream" or sent.get("stream") is True
            link = None if result is None else self._plan.alink(result, self._shape, sent, streamed=streamed)
            return manager, link, _requested(sent)

        return AsyncGuardedContext(open_)
