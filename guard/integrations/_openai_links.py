"""What the `openai` client returns, passed through as it is while the call is linked to its check's run.

A response is linked at once (model and id); a stream on its first chunk or event that names its call;
a stream helper's final completion when it is asked for before any event was read; a raw or streamed
HTTP response (`with_raw_response`, `with_streaming_response`) by the model asked for, with the call id
when the answer was parsed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai._response import BaseAPIResponse

Link = Callable[[str | None, str | None], None]
AsyncLink = Callable[[str | None, str | None], Awaitable[None]]


def call_of(item: Any) -> tuple[str | None, str | None]:
    """(model, call id) of a response, a chunk, or a stream event that carries one (None, None otherwise)."""
    for inner in ("response", "chunk", "snapshot"):  # Responses events carry the response; chat helpers the chunk
        nested = getattr(item, inner, None)
        if nested is not None and getattr(nested, "id", None):
            item = nested
            break
    model, call_id = getattr(item, "model", None), getattr(item, "id", None)
    return (str(model) if model else None), (str(call_id) if isinstance(call_id, str) and call_id else None)


class _Once:
    """A link made at most once: on the first item that names the call."""

    def __init__(self, link: Link) -> None:
        self._link: Link | None = link

    def see(self, item: Any) -> None:
        if self._link is None:
            return
        model, call_id = call_of(item)
        if call_id is not None:
            link, self._link = self._link, None
            link(model, call_id)


class _AsyncOnce:
    """`_Once` for the async client."""

    def __init__(self, link: AsyncLink) -> None:
        self._link: AsyncLink | None = link

    async def see(self, item: Any) -> None:
        if self._link is None:
            return
        model, call_id = call_of(item)
        if call_id is not None:
            link, self._link = self._link, None
            await link(model, call_id)


class LinkedStream:
    """A stream (of chunks, or of a stream helper's events) passed through as it comes, linked on its first id."""

    def __init__(self, stream: Any, link: Link) -> None:
        self._stream = stream
        self._once = _Once(link)
        self._items: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __iter__(self) -> Iterator[Any]:
        for item in self._stream:
            self._once.see(item)
            yield item

    def __next__(self) -> Any:
        if self._items is None:
            self._items = iter(self)
        return next(self._items)

    def get_final_completion(self) -> Any:
        """The stream helper's final completion (linked, if no event was read before)."""
        final = self._stream.get_final_completion()
        self._once.see(final)
        return final

    def get_final_response(self) -> Any:
        """The Responses stream helper's final response (linked, if no event was read before)."""
        final = self._stream.get_final_response()
        self._once.see(final)
        return final

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> LinkedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncLinkedStream:
    """`LinkedStream` for the async client."""

    def __init__(self, stream: Any, link: AsyncLink) -> None:
        self._stream = stream
        self._once = _AsyncOnce(link)
        self._items: AsyncIterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for item in self._stream:
            await self._once.see(item)
            yield item

    async def __anext__(self) -> Any:
        if self._items is None:
            self._items = aiter(self)
        return await anext(self._items)

    async def get_final_completion(self) -> Any:
        """The stream helper's final completion (linked, if no event was read before)."""
        final = await self._stream.get_final_completion()
        await self._once.see(final)
        return final

    async def get_final_response(self) -> Any:
        """The Responses stream helper's final response (linked, if no event was read before)."""
        final = await self._stream.get_final_response()
        await self._once.see(final)
        return final

    async def close(self) -> None:
        await self._stream.close()

    async def __aenter__(self) -> AsyncLinkedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class LinkedContext:
    """A context manager the client returns (a stream helper, a streamed HTTP response), linked once entered."""

    def __init__(self, manager: Any, link: Link, requested: str | None) -> None:
        self._manager = manager
        self._link = link
        self._requested = requested

    def __enter__(self) -> Any:
        entered = self._manager.__enter__()
        if isinstance(entered, BaseAPIResponse):  # with_streaming_response: the body is the caller's to read
            self._link(self._requested, None)
            return entered
        return LinkedStream(entered, self._link)

    def __exit__(self, *exc: Any) -> Any:
        return self._manager.__exit__(*exc)


def linked(response: Any, link: Link, *, requested: str | None, streamed: bool) -> Any:
    """`response`, passed through, with the call linked as soon as it is known (see the module's words)."""
    if isinstance(response, Stream):
        return LinkedStream(response, link)
    if isinstance(response, LegacyAPIResponse):  # with_raw_response: its parse() is cached, so reading it is free
        link(*(call_of(response.parse()) if not streamed else (requested, None)))
        return response
    if hasattr(response, "__enter__"):
        return LinkedContext(response, link, requested)
    link(*call_of(response))
    return response


async def alinked(response: Any, link: AsyncLink, *, requested: str | None, streamed: bool) -> Any:
    """`linked` for the async client (stream helpers and streamed responses are linked by `AsyncGuardedContext`)."""
    if isinstance(response, AsyncStream):
        return AsyncLinkedStream(response, link)
    if isinstance(response, LegacyAPIResponse):
        await link(*(call_of(response.parse()) if not streamed else (requested, None)))
        return response
    await link(*call_of(response))
    return response


class AsyncGuardedContext:
    """A stream helper or streamed response of the async client, whose request is guarded when it is entered.

    `open_` guards the request and returns the client's context manager for it, the link (None: nothing
    was checked) and the model asked for.
    """

    def __init__(self, open_: Callable[[], Awaitable[tuple[Any, AsyncLink | None, str | None]]]) -> None:
        self._open = open_
        self._manager: Any = None

    async def __aenter__(self) -> Any:
        manager, link, requested = await self._open()
        self._manager = manager
        entered = await manager.__aenter__()
        if link is None:
            return entered
        if isinstance(entered, BaseAPIResponse):
            await link(requested, None)
            return entered
        return AsyncLinkedStream(entered, link)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)
