"""OpenAI (the `openai` package): a drop-in client whose model calls are guarded as the gateway guards them.

    from openai import OpenAI
    from guard.integrations.openai import guard_openai

    client = guard_openai(OpenAI(), guard, pipeline="support-bot")
    client.chat.completions.create(model="gpt-4o", messages=[..., {"role": "tool", "content": crm_result}])
    client.responses.create(model="gpt-4o", input=[..., {"type": "function_call_output", "output": crm_result}])
    client.chat.completions.create(model="gpt-4o", records=records, messages=[...])   # records given beside

Tool results (chat `tool` and legacy `function` messages, Responses `function_call_output` items) are
read fail-closed and the records they hold are checked; a blocked record is replaced where it stood by
a notice the model can read (`record withheld: customer C-2001 from sap (STALE: 3h 5m old, the limit is
1h)`: entity and reason codes, never the record's values), a text that seems to hold records that
cannot be read one by one is withheld whole: the same rules and notices as the service's gateway and
its LiteLLM guardrail (`guard.integrations.tool_results`). `records=` (optional) are checked in the
same run and shown to the model as one system message first: the allowed ones, and with
`include_notices=True` a notice for each blocked one.

`create`, `parse` and `stream`, sync, async and streamed, `with_raw_response` and
`with_streaming_response`, on `chat.completions`, `responses` and their `beta` twins, are guarded;
everything else on the client (`models`, `embeddings`, `files`, ...) is the client's own, and
`with_options` returns a guarded client. The model call is linked to the check's run in the lineage
store (`extra={"integration": "openai", "endpoint": ..., "stream": ...}`), best-effort: when the link
fails the answer is still returned, and the failure is logged and warned about
(`guard.integrations.checking.LinkWarning`). A call that carries no record is sent as it is.
`min_allowed` raises `BlockedContextError` before the call instead of asking the model with fewer
records than that. `create_checked` returns the response and the `CheckResult` together.

Install with `pip install 'freshguard[openai]'`.
"""

from __future__ import annotations

from typing import Any, overload

from openai import AsyncOpenAI, OpenAI

from guard.integrations._openai_calls import AsyncGuardedCalls, Checked, GuardedCalls, Plan
from guard.integrations.checking import BlockedContextError, Checker
from guard.integrations.tool_results import CHAT, RESPONSES

__all__ = ["BlockedContextError", "Checked", "GuardedAsyncOpenAI", "GuardedOpenAI", "guard_openai"]


class _Namespace:
    """A part of the client (`chat`, `beta`, `with_raw_response`, ...) whose model calls are guarded.

    In a chat namespace `completions` is guarded; elsewhere `chat` and `responses` are. Every other
    member is the client's own.
    """

    def __init__(
        self, target: Any, plan: Plan, calls: type[GuardedCalls | AsyncGuardedCalls], *, chat: bool = False,
        streaming: bool = False,
    ) -> None:  # fmt: skip
        self._target = target
        self._plan = plan
        self._calls = calls
        self._chat = chat
        self._streaming = streaming  # under with_streaming_response: the async client's calls answer context managers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._target, name)
        if self._chat and name == "completions":
            return self._calls(value, self._plan, CHAT, deferred=self._streaming)
        if not self._chat and name == "responses":
            return self._calls(value, self._plan, RESPONSES, deferred=self._streaming)
        if not self._chat and name == "chat":
            return _Namespace(value, self._plan, self._calls, chat=True, streaming=self._streaming)
        if name in ("with_raw_response", "with_streaming_response"):
            streaming = self._streaming or name == "with_streaming_response"
            return _Namespace(value, self._plan, self._calls, chat=self._chat, streaming=streaming)
        return value


class GuardedOpenAI(_Namespace):
    """An `OpenAI` client whose model calls guard the records they carry; otherwise the client itself."""

    def __init__(
        self, client: OpenAI, checker: Checker, *, pipeline: str, min_allowed: int = 0, include_notices: bool = False
    ) -> None:
        super().__init__(client, Plan(checker, pipeline, min_allowed, include_notices), GuardedCalls)
        self.client = client
        self.chat: Any = _Namespace(client.chat, self._plan, GuardedCalls, chat=True)
        self.responses = GuardedCalls(client.responses, self._plan, RESPONSES)
        self.beta: Any = _Namespace(client.beta, self._plan, GuardedCalls)

    def with_options(self, **options: Any) -> GuardedOpenAI:
        """The client's `with_options` (timeouts, retries, headers, ...), guarded the same way."""
        plan = self._plan
        return GuardedOpenAI(self.client.with_options(**options), plan.checker, pipeline=plan.pipeline,
                             min_allowed=plan.min_allowed, include_notices=plan.include_notices)  # fmt: skip

    copy = with_options

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> GuardedOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GuardedAsyncOpenAI(_Namespace):
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
        super().__init__(client, Plan(checker, pipeline, min_allowed, include_notices), AsyncGuardedCalls)
        self.client = client
        self.chat: Any = _Namespace(client.chat, self._plan, AsyncGuardedCalls, chat=True)
        self.responses = AsyncGuardedCalls(client.responses, self._plan, RESPONSES)
        self.beta: Any = _Namespace(client.beta, self._plan, AsyncGuardedCalls)

    def with_options(self, **options: Any) -> GuardedAsyncOpenAI:
        """The client's `with_options` (timeouts, retries, headers, ...), guarded the same way."""
        plan = self._plan
        return GuardedAsyncOpenAI(self.client.with_options(**options), plan.checker, pipeline=plan.pipeline,
                                  min_allowed=plan.min_allowed, include_notices=plan.include_notices)  # fmt: skip

    copy = with_options

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> GuardedAsyncOpenAI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


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
    """Wrap an `OpenAI` or `AsyncOpenAI` client so its model calls guard the records they carry."""
    options: dict[str, Any] = {"pipeline": pipeline, "min_allowed": min_allowed, "include_notices": include_notices}
    if isinstance(client, AsyncOpenAI):
        return GuardedAsyncOpenAI(client, checker, **options)
    if isinstance(client, OpenAI):
        return GuardedOpenAI(client, checker, **options)
    raise TypeError(f"guard_openai wraps an openai.OpenAI or openai.AsyncOpenAI client, not {type(client).__name__}")
