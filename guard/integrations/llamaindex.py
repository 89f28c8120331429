"""LlamaIndex (llama-index-core): a node postprocessor that keeps only the nodes the guard allows.

    from guard.integrations.llamaindex import FreshguardPostprocessor, FreshguardEventHandler

    engine = index.as_query_engine(node_postprocessors=[FreshguardPostprocessor(checker=guard, pipeline="support-rag")])
    answer = engine.query("What is Ana's credit limit?")
    answer.source_nodes[0].node.metadata["freshguard"]         # {"action", "reasons", "run_id", "policy"}

Each node becomes a record envelope as LangChain documents do (`guard.integrations.documents`):
metadata members named like the envelope's, `content` from the node's text, `id` from its node id;
`mapping` adds to or overrides that. The nodes the guard allows come back annotated (the `freshguard`
metadata member, kept out of what the LLM and the embedding model read); the blocked ones are
dispatched as a `FreshguardBlockedEvent` on LlamaIndex's instrumentation (`FreshguardEventHandler`
collects them); `min_allowed` raises `BlockedContextError` instead of answering from fewer nodes. A
node without an envelope is withheld with a reason that says so, with a warning logged once per
postprocessor. Sync (`postprocess_nodes`, `query`) and async (`apostprocess_nodes`, `aquery`).

Install with `pip install 'freshguard[llamaindex]'`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, PrivateAttr, field_validator

from guard import CheckResult, Decision, Guard
from guard.integrations.checking import (
    BlockedContextError,
    RemoteChecker,
    acheck_records,
    check_records,
    enforce_floor,
)
from guard.integrations.documents import OnceWarning, envelope_of, split, validate_mapping, verdict

__all__ = [
    "METADATA_KEY",
    "BlockedContextError",
    "BlockedNode",
    "FreshguardBlockedEvent",
    "FreshguardEventHandler",
    "FreshguardPostprocessor",
]

#: The metadata member of each kept node that holds the guard's decision.
METADATA_KEY = "freshguard"
_dispatcher = get_dispatcher(__name__)


@dataclass(frozen=True, slots=True)
class BlockedNode:
    """A node the guard kept from the model, and why."""

    node: NodeWithScore
    decision: Decision

    @property
    def reasons(self) -> list[str]:
        """The reasons, in words."""
        return [reason.message for reason in self.decision.reasons]


class FreshguardBlockedEvent(BaseEvent):
    """Nodes the guard withheld from a query: the check's run, and each blocked node with its decision."""

    run_id: str
    pipeline: str
    checked: int
    allowed: int
    blocked: list[Any]  # BlockedNode
    result: Any  # CheckResult

    @classmethod
    def class_name(cls) -> str:
        return "FreshguardBlockedEvent"


class FreshguardEventHandler(BaseEventHandler):
    """Collects what the guard blocked: add it with `get_dispatcher().add_event_handler(handler)`."""

    blocked: list[Any] = Field(default_factory=list, description="Every BlockedNode seen.")
    run_ids: list[str] = Field(default_factory=list, description="The runs of the checks that blocked something.")

    @classmethod
    def class_name(cls) -> str:
        return "FreshguardEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Collect a `FreshguardBlockedEvent`; other events are not this handler's."""
        if isinstance(event, FreshguardBlockedEvent):
            self.blocked.extend(event.blocked)
            if event.run_id not in self.run_ids:
                self.run_ids.append(event.run_id)


class FreshguardPostprocessor(BaseNodePostprocessor):
    """A node postprocessor: checks the retrieved nodes and keeps only those the guard allows, annotated."""

    checker: Any = Field(description="A guard.Guard or a guard.ServiceClient.")
    pipeline: str = Field(min_length=1, description="The pipeline the checks are kept under.")
    mapping: Any = Field(None, description="{envelope member: metadata key}, or a function BaseNode -> members.")
    min_allowed: int = Field(0, ge=0, description="Raise BlockedContextError when blocking leaves fewer nodes.")
    consumer: dict[str, Any] | None = Field(None, description="Kept with each check, e.g. {'model': ...}.")
    _warning: OnceWarning = PrivateAttr(default_factory=OnceWarning)

    _validate_mapping = field_validator("mapping")(validate_mapping)

    @field_validator("checker")
    @classmethod
    def _validate_checker(cls, value: object) -> object:
        if isinstance(value, Guard | RemoteChecker):
            return value
        raise ValueError(
            f"checker must be a guard.Guard (in-process) or a guard.ServiceClient (a running service), "
            f"not {type(value).__name__}"
        )

    @classmethod
    def class_name(cls) -> str:
        return "FreshguardPostprocessor"

    def envelopes(self, nodes: Sequence[NodeWithScore]) -> list[dict[str, Any]]:
        """The record envelope of each node."""
        built = []
        for i, scored in enumerate(nodes):
            node = scored.node
            built.append(envelope_of(node, node.metadata, node.get_content(), doc_id=node.node_id, position=i,
                                     mapping=self.mapping))  # fmt: skip
        return built

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if not nodes:
            return []
        envelopes = self.envelopes(nodes)
        result = check_records(self.checker, envelopes, pipeline=self.pipeline, consumer=self.consumer)
        return self._decided(nodes, envelopes, result)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if not nodes:
            return []
        envelopes = self.envelopes(nodes)
        result = await acheck_records(self.checker, envelopes, pipeline=self.pipeline, consumer=self.consumer)
        return self._decided(nodes, envelopes, result)

    def _decided(
        self, nodes: list[NodeWithScore], envelopes: list[dict[str, Any]], result: CheckResult
    ) -> list[NodeWithScore]:
        kept, blocked = split(nodes, envelopes, result, warning=self._warning, pipeline=self.pipeline)
        if blocked:
            _dispatcher.event(
                FreshguardBlockedEvent(
                    run_id=result.run_id, pipeline=result.pipeline, checked=len(nodes), allowed=len(kept),
                    blocked=[BlockedNode(node, decision) for node, decision in blocked], result=result,
                )
            )  # fmt: skip
        enforce_floor(result, self.min_allowed, what="nodes")
        return [_annotated(node, decision, result) for node, decision in kept]


def _annotated(scored: NodeWithScore, decision: Decision, result: CheckResult) -> NodeWithScore:
    """A copy of the node carrying its decision in its metadata, out of what the LLM and embeddings read."""
    node = scored.node.model_copy()
    node.metadata = {**scored.node.metadata, METADATA_KEY: verdict(decision, result)}
    node.excluded_llm_metadata_keys = [*scored.node.excluded_llm_metadata_keys, METADATA_KEY]
    node.excluded_embed_metadata_keys = [*scored.node.excluded_embed_metadata_keys, METADATA_KEY]
    return NodeWithScore(node=node, score=scored.score)
