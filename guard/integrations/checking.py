"""What the integrations check with: "a checker", an in-process `Guard` or a `ServiceClient`, used alike.

    result = check_records(checker, records, pipeline="support-bot")
    link_call(checker, result.run_id, model=response.model, call_id=response.id, integration="openai")

Both kinds give the same decisions for the same records; a link goes to the store (`Guard`, when it has
one) or to POST /v1/runs/{run_id}/consumption (`ServiceClient`). After the model has answered, the
integrations link with `try_link_call`: a link that fails is logged and warned about (`LinkWarning`),
and the answer is returned, since throwing it away would only make the caller pay for the call again.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias, runtime_checkable

from guard import CheckResult, Guard, GuardError
from guard.integrations.context import summary

_log = logging.getLogger("freshguard.integrations")


@runtime_checkable
class RemoteChecker(Protocol):
    """What `guard.client.ServiceClient` offers the integrations (a test double may offer the same)."""

    def check(
        self, records: Iterable[Any], *, pipeline: str, consumer: Mapping[str, Any] | None = None
    ) -> CheckResult: ...

    async def acheck(
        self, records: Iterable[Any], *, pipeline: str, consumer: Mapping[str, Any] | None = None
    ) -> CheckResult: ...

    def link_consumption(
        self, run_id: str, model: str, call_id: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]: ...

    async def alink_consumption(
        self, run_id: str, model: str, call_id: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]: ...


#: A `Guard` (in-process) or a `ServiceClient` (through a running service).
Checker: TypeAlias = Guard | RemoteChecker


class BlockedContextError(GuardError):
    """The guard blocked so much that fewer records than the configured floor may reach the model."""

    def __init__(self, result: CheckResult, *, min_allowed: int, what: str = "records") -> None:
        self.result = result
        self.min_allowed = min_allowed
        allowed = len(result.allowed)
        total = len(result.decisions)
        super().__init__(
            f"Freshguard blocked {total - allowed} of {total} {what} for pipeline {result.pipeline} "
            f"(run {result.run_id}), leaving {allowed}, below the floor of {min_allowed}: {summary(result)}; "
            "refresh the sources named, or lower min_allowed to let the model answer with less"
        )


def enforce_floor(result: CheckResult, min_allowed: int, *, what: str = "records") -> None:
    """Raise `BlockedContextError` when blocking left fewer than `min_allowed` allowed records.

    Only the guard's blocking trips the floor: a check with nothing blocked passes whatever its size.
    """
    if min_allowed > 0 and result.blocked and len(result.allowed) < min_allowed:
        raise BlockedContextError(result, min_allowed=min_allowed, what=what)


def check_records(
    checker: Checker, records: Iterable[Any], *, pipeline: str, consumer: Mapping[str, Any] | None = None
) -> CheckResult:
    """Decide `records` with `checker`."""
    return checker.check(records, pipeline=pipeline, consumer=consumer)


async def acheck_records(
    checker: Checker, records: Iterable[Any], *, pipeline: str, consumer: Mapping[str, Any] | None = None
) -> CheckResult:
    """Decide `records` with `checker`, off the event loop (an in-process guard runs in a worker thread)."""
    if isinstance(checker, Guard):
        batch = list(records)
        return await asyncio.to_thread(lambda: checker.check(batch, pipeline=pipeline, consumer=consumer))
    return await checker.acheck(records, pipeline=pipeline, consumer=consumer)


def call_extra(integration: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `extra` of a consumption link: which integration made it, and anything the caller adds."""
    return {**(extra or {}), "integration": integration}


def link_call(
    checker: Checker,
    run_id: str,
    *,
    model: str,
    call_id: str | None,
    integration: str,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """Link the model call that consumed run `run_id`'s allowed records to it; False when there is no store."""
    details = call_extra(integration, extra)
    if isinstance(checker, Guard):
        if checker.store is None:
            _log.debug("run %s is not linked to %s %s: the guard has no lineage store", run_id, model, call_id)
            return False
        store = checker.store
        store.link_consumption(run_id, model, call_id, details, linked_at=datetime.now(UTC))
        return True
    checker.link_consumption(run_id, model, call_id, details)
    return True


async def alink_call(
    checker: Checker,
    run_id: str,
    *,
    model: str,
    call_id: str | None,
    integration: str,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """`link_call`, off the event loop."""
    if isinstance(checker, Guard):
        return await asyncio.to_thread(
            link_call, checker, run_id, model=model, call_id=call_id, integration=integration, extra=extra
        )
    await checker.alink_consumption(run_id, model, call_id, call_extra(integration, extra))
    return True


class LinkWarning(UserWarning):
    """A model call answered but could not be linked to its run in the lineage store."""


def _link_failed(run_id: str, model: str, call_id: str | None, integration: str, exc: GuardError) -> None:
    said = (
        f"the {integration} call {call_id or '(no id)'} to {model} answered but could not be linked to run {run_id} "
        f"({type(exc).__name__}: {exc}); the answer is returned, the lineage misses this link"
    )
    _log.error(said)
    warnings.warn(said, LinkWarning, stacklevel=3)


def try_link_call(
    checker: Checker,
    run_id: str,
    *,
    model: str,
    call_id: str | None,
    integration: str,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """`link_call`, best-effort: a `GuardError` is logged and warned about (`LinkWarning`); False when not linked."""
    try:
        return link_call(checker, run_id, model=model, call_id=call_id, integration=integration, extra=extra)
    except GuardError as exc:
        _link_failed(run_id, model, call_id, integration, exc)
        return False


async def atry_link_call(
    checker: Checker,
    run_id: str,
    *,
    model: str,
    call_id: str | None,
    integration: str,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """`try_link_call`, off the event loop."""
    try:
        return await alink_call(checker, run_id, model=model, call_id=call_id, integration=integration, extra=extra)
    except GuardError as exc:
        _link_failed(run_id, model, call_id, integration, exc)
        return False
