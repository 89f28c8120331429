"""LangChain (langchain-core): a guarded retriever, a document compressor, a guard step for LCEL chains, and a
callback handler.

    from guard.integrations.langchain import GuardedRetriever, FreshguardCompressor, guard_documents

    retriever = GuardedRetriever(base_retriever=store.as_retriever(), checker=guard, pipeline="support-bot")
    docs = retriever.invoke("what is Ana's credit limit?")        # only the allowed documents
    docs[0].metadata["freshguard"]                                 # {"action", "reasons", "run_id", "policy"}

    compressed = ContextualCompressionRetriever(
        base_compressor=FreshguardCompressor(checker=guard, pipeline="support-bot"), base_retriever=retriever
    )
    chain = store.as_retriever() | guard_documents(guard, pipeline="support-bot") | format_docs | prompt | model

Each `Document` becomes a record envelope (`guard.integrations.documents`): metadata members named like
the envelope's, `content` from `page_content`, `id` from the document's id (else `doc-<position>`);
`mapping` adds to or overrides that, as {envelope member: metadata key} or a function of the document.
A document whose metadata carries no envelope is withheld with a reason that says so, and a warning is
logged once per retriever. Blocked documents are dispatched as the custom callback event
`freshguard_blocked` (`FreshguardHandler` collects them); `min_allowed` raises `BlockedContextError`
instead of handing the model fewer documents than that.

Install with `pip install 'freshguard[langchain]'`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForRetrieverRun,
    BaseCallbackHandler,
    CallbackManager,
    CallbackManagerForRetrieverRun,
    Callbacks,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from guard import CheckResult, Decision, Guard
from guard.integrations.checking import (
    BlockedContextError,
    Checker,
    RemoteChecker,
    acheck_records,
    check_records,
    enforce_floor,
    try_link_call,
)
from guard.integrations.documents import (
    ENVELOPE_MEMBERS,
    OnceWarning,
    envelope_of,
    split,
    validate_mapping,
    verdict,
)

__all__ = [
    "BLOCKED_EVENT",
    "ENVELOPE_MEMBERS",
    "METADATA_KEY",
    "BlockedContextError",
    "BlockedDocument",
    "FreshguardCompressor",
    "FreshguardHandler",
    "GuardedRetriever",
    "Screened",
    "document_envelope",
    "guard_documents",
]

#: The name of the custom callback event that reports blocked documents.
BLOCKED_EVENT = "freshguard_blocked"
#: The metadata member of each returned document that holds the guard's decision.
METADATA_KEY = "freshguard"

#: {envelope member: metadata key}, or a function from a document to envelope members.
RecordMapping = Mapping[str, str] | Callable[[Document], Mapping[str, Any]]


def document_envelope(document: Document, position: int, mapping: RecordMapping | None = None) -> dict[str, Any]:
    """The record envelope of one document: the default mapping, then `mapping` over it."""
    return envelope_of(document, document.metadata, document.page_content, doc_id=document.id, position=position,
                       mapping=mapping)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BlockedDocument:
    """A document the guard kept from the model, and why."""

    document: Document
    decision: Decision

    @property
    def reasons(self) -> list[str]:
        """The reasons, in words."""
        return [reason.message for reason in self.decision.reasons]


@dataclass(frozen=True, slots=True)
class Screened:
    """What the guard made of a list of documents: the ones that may reach the model, the blocked ones, the check."""

    documents: list[Document]
    blocked: list[BlockedDocument]
    result: CheckResult | None  # None when there was nothing to check


@dataclass(frozen=True, slots=True)
class _Screen:
    """How documents are checked: shared by the retriever and the LCEL step."""

    checker: Checker
    pipeline: str
    mapping: RecordMapping | None = None
    min_allowed: int = 0
    consumer: Mapping[str, Any] | None = None
    warning: OnceWarning = field(default_factory=OnceWarning)

    def envelopes(self, documents: Sequence[Document]) -> list[dict[str, Any]]:
        return [document_envelope(document, i, self.mapping) for i, document in enumerate(documents)]

    def screen(self, documents: Sequence[Document]) -> Screened:
        if not documents:
            return Screened([], [], None)
        envelopes = self.envelopes(documents)
        result = check_records(self.checker, envelopes, pipeline=self.pipeline, consumer=self.consumer)
        return self._split(documents, envelopes, result)

    async def ascreen(self, documents: Sequence[Document]) -> Screened:
        if not documents:
            return Screened([], [], None)
        envelopes = self.envelopes(documents)
        result = await acheck_records(self.checker, envelopes, pipeline=self.pipeline, consumer=self.consumer)
        return self._split(documents, envelopes, result)

    def _split(self, documents: Sequence[Document], envelopes: list[dict[str, Any]], result: CheckResult) -> Screened:
        kept, blocked = split(documents, envelopes, result, warning=self.warning, pipeline=self.pipeline)
        return Screened([_annotated(document, decision, result) for document, decision in kept],
                        [BlockedDocument(document, decision) for document, decision in blocked], result)  # fmt: skip

    def floor(self, screened: Screened) -> None:
        if screened.result is not None:
            enforce_floor(screened.result, self.min_allowed, what="documents")


def _annotated(document: Document, decision: Decision, result: CheckResult) -> Document:
    return document.model_copy(update={"metadata": {**document.metadata, METADATA_KEY: verdict(decision, result)}})


def _event(screened: Screened) -> dict[str, Any]:
    """The `freshguard_blocked` event's data: the run, and each blocked document with its reasons."""
    result = screened.result
    assert result is not None  # noqa: S101 - only sent after a check
    return {
        "run_id": result.run_id,
        "pipeline": result.pipeline,
        "checked": len(result.decisions),
        "allowed": len(screened.documents),
        "blocked": [
            {
                "id": b.decision.id,
                "reasons": [{"code": r.code.value, "message": r.message} for r in b.decision.reasons],
                "document": b.document,
                "decision": b.decision,
            }
            for b in screened.blocked
        ],
        "result": result,
    }


def _checker_field(value: object) -> object:
    if isinstance(value, Guard | RemoteChecker):
        return value
    raise ValueError(
        f"checker must be a guard.Guard (in-process) or a guard.ServiceClient (a running service), "
        f"not {type(value).__name__}"
    )


class _Screening(BaseModel):
    """What the retriever and the compressor are configured with, and how they check documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    checker: Any = Field(description="A guard.Guard or a guard.ServiceClient.")
    pipeline: str = Field(min_length=1, description="The pipeline the checks are kept under.")
    mapping: Any = Field(None, description="{envelope member: metadata key}, or a function Document -> members.")
    min_allowed: int = Field(0, ge=0, description="Raise BlockedContextError when blocking leaves fewer documents.")
    consumer: dict[str, Any] | None = Field(None, description="Kept with each check, e.g. {'model': ...}.")
    _warning: OnceWarning = PrivateAttr(default_factory=OnceWarning)

    _validate_checker = field_validator("checker")(_checker_field)
    _validate_mapping = field_validator("mapping")(validate_mapping)

    @property
    def _screen(self) -> _Screen:
        return _Screen(self.checker, self.pipeline, self.mapping, self.min_allowed, self.consumer, self._warning)


class GuardedRetriever(_Screening, BaseRetriever):
    """Wraps any retriever: checks what it found and returns only the documents the guard allows.

    Sync (`invoke`) and async (`ainvoke`); with a `Guard` or a `ServiceClient` as `checker`. The wrapped
    retriever is `base_retriever=` (as LangChain's own wrappers take it) or `retriever=`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: BaseRetriever | None = Field(None, description="The retriever whose documents are checked.")
    base_retriever: BaseRetriever | None = Field(None, description="The same, under the name LangChain's wrappers use.")

    @model_validator(mode="after")
    def _one_retriever(self) -> GuardedRetriever:
        if (self.retriever is None) == (self.base_retriever is None):
            raise ValueError("give the retriever to wrap once: base_retriever= (or retriever=), not both or neither")
        self.retriever = self.base_retriever = self.retriever or self.base_retriever
        return self

    @property
    def _wrapped(self) -> BaseRetriever:
        assert self.retriever is not None  # noqa: S101 - _one_retriever made sure
        return self.retriever

    def screen(self, documents: Sequence[Document]) -> Screened:
        """Check documents found elsewhere, as this retriever checks its own (no callbacks, no floor)."""
        return self._screen.screen(documents)

    async def ascreen(self, documents: Sequence[Document]) -> Screened:
        """`screen`, without blocking the event loop."""
        return await self._screen.ascreen(documents)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        found = self._wrapped.invoke(query, config={"callbacks": run_manager.get_child()})
        screen = self._screen
        screened = screen.screen(found)
        if screened.blocked:
            run_manager.get_child().on_custom_event(BLOCKED_EVENT, _event(screened), run_id=run_manager.run_id)
        screen.floor(screened)
        return screened.documents

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        found = await self._wrapped.ainvoke(query, config={"callbacks": run_manager.get_child()})
        screen = self._screen
        screened = await screen.ascreen(found)
        if screened.blocked:
            await run_manager.get_child().on_custom_event(BLOCKED_EVENT, _event(screened), run_id=run_manager.run_id)
        screen.floor(screened)
        return screened.documents


def guard_documents(
    checker: Checker,
    *,
    pipeline: str,
    mapping: RecordMapping | None = None,
    min_allowed: int = 0,
    consumer: Mapping[str, Any] | None = None,
) -> RunnableLambda[Sequence[Document], list[Document]]:
    """A guard step for LCEL chains: documents in, the allowed ones out (annotated as the retriever does)."""
    screen = _Screen(_checker_field(checker), pipeline, mapping, min_allowed, consumer)  # type: ignore[arg-type]

    def guard_step(documents: Sequence[Document], config: RunnableConfig) -> list[Document]:
        screened = screen.screen(documents)
        if screened.blocked:
            dispatch_custom_event(BLOCKED_EVENT, _event(screened), config=config)
        screen.floor(screened)
        return screened.documents

    async def aguard_step(documents: Sequence[Document], config: RunnableConfig) -> list[Document]:
        screened = await screen.ascreen(documents)
        if screened.blocked:
            await adispatch_custom_event(BLOCKED_EVENT, _event(screened), config=config)
        screen.floor(screened)
        return screened.documents

    return RunnableLambda(guard_step, afunc=aguard_step, name="freshguard")


class FreshguardCompressor(_Screening, BaseDocumentCompressor):
    """A document compressor for `ContextualCompressionRetriever`: keeps the documents the guard allows.

    The same decisions, annotations, `freshguard_blocked` events and floor as `GuardedRetriever`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The documents the guard allows, annotated; the blocked ones reported as a `freshguard_blocked` event."""
        screen = self._screen
        screened = screen.screen(documents)
        if screened.blocked:
            CallbackManager.configure(inheritable_callbacks=callbacks).on_custom_event(BLOCKED_EVENT, _event(screened))
        screen.floor(screened)
        return screened.documents

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """`compress_documents`, without blocking the event loop."""
        screen = self._screen
        screened = await screen.ascreen(documents)
        if screened.blocked:
            manager = AsyncCallbackManager.configure(inheritable_callbacks=callbacks)
            await manager.on_custom_event(BLOCKED_EVENT, _event(screened))
        screen.floor(screened)
        return screened.documents


class FreshguardHandler(BaseCallbackHandler):
    """A callback handler that collects what the guard blocked and, given a checker, links model calls.

    Pass it in `config={"callbacks": [handler]}`. `blocked` lists every document a guarded retrieval or
    guard step kept from the model; `run_ids` the runs of those checks. With `checker`, every chat model
    or LLM call that ends after a guarded retrieval is linked to those runs (model and call id from the
    response, `extra={"integration": "langchain"}`): use one handler per conversation or request.
    """

    def __init__(self, checker: Checker | None = None) -> None:
        self.checker = checker
        self.blocked: list[BlockedDocument] = []
        self.run_ids: list[str] = []
        self.linked: list[tuple[str, str, str | None]] = []  # (run_id, model, call_id)
        self._models: dict[UUID, str] = {}

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Collect a `freshguard_blocked` event."""
        if name != BLOCKED_EVENT:
            return
        result: CheckResult = data["result"]
        self._saw_run(result.run_id)
        self.blocked.extend(BlockedDocument(b["document"], b["decision"]) for b in data["blocked"])

    def on_retriever_end(self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any) -> None:
        """Note the runs of guarded documents (a retrieval that blocked nothing sends no event)."""
        self._saw_documents(documents)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Note the runs of documents a guard step let through."""
        if isinstance(outputs, list):
            self._saw_documents(outputs)

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Remember the model a chat call names (LangChain's `ls_model_name` metadata)."""
        self._remember_model(run_id, serialized, kwargs.get("metadata"))

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        """Remember the model an LLM call names."""
        self._remember_model(run_id, serialized, kwargs.get("metadata"))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Link the model call that just ended to every guarded run seen so far."""
        started_as = self._models.pop(run_id, None)
        if self.checker is None:
            return
        model, call_id = _model_call(response, started_as)
        for guarded in self.run_ids:
            if try_link_call(self.checker, guarded, model=model, call_id=call_id, integration="langchain"):
                self.linked.append((guarded, model, call_id))

    def _saw_run(self, run_id: str) -> None:
        if run_id not in self.run_ids:
            self.run_ids.append(run_id)

    def _saw_documents(self, documents: Sequence[Any]) -> None:
        for document in documents:
            verdict = document.metadata.get(METADATA_KEY) if isinstance(document, Document) else None
            if isinstance(verdict, Mapping) and isinstance(verdict.get("run_id"), str):
                self._saw_run(verdict["run_id"])

    def _remember_model(self, run_id: UUID, serialized: Mapping[str, Any] | None, metadata: Any) -> None:
        named = metadata.get("ls_model_name") if isinstance(metadata, Mapping) else None
        if not named and serialized:
            named = serialized.get("name")
        if named:
            self._models[run_id] = str(named)


def _model_call(response: LLMResult, started_as: str | None) -> tuple[str, str | None]:
    """(model, call id) of a finished call: from the response's metadata, else what the call named at start."""
    model: str | None = None
    call_id: str | None = None
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                message = generation.message
                metadata = message.response_metadata or {}
                model = model or metadata.get("model_name") or metadata.get("model")
                call_id = call_id or metadata.get("id") or message.id
    output = response.llm_output or {}
    model = model or output.get("model_name") or output.get("model") or started_as or "unknown"
    return str(model), None if call_id is None else str(call_id)
