"""Every check as an OpenLineage run event, sent by the openlineage-python client (`freshguard[openlineage]`).

    from guard.integrations.openlineage import emit_openlineage
    emitter = emit_openlineage(guard)          # every check from now on is emitted
    ...
    emitter.close()                            # on shutdown: sends what is queued (one bounded wait)

The client is configured the way it always is: an `openlineage.yml` (in the working directory,
`~/.openlineage/`, or named by `OPENLINEAGE_CONFIG`), or environment variables (`OPENLINEAGE_URL`
and `OPENLINEAGE_API_KEY` for HTTP; `OPENLINEAGE__TRANSPORT__TYPE=console|file|http|...` and the
other `OPENLINEAGE__TRANSPORT__*` members for any transport); `OPENLINEAGE_DISABLED=true` turns it off.

Emission never slows or fails a check: the listener only puts the check on a bounded queue; one
background thread builds the event and sends it. When the queue is full (the receiver is down or
slow) the check's event is dropped and counted; `emitter.stats()` says how many were sent, dropped
and failed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guard import CheckResult, ConfigurationError, Guard, Policy

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient

    from guard.spark import SparkRun

_log = logging.getLogger("freshguard.openlineage")
DEFAULT_NAMESPACE = "freshguard"
_Item = tuple[CheckResult, Policy] | None  # None wakes the sending thread to stop


@dataclass(frozen=True, slots=True)
class EmitterStats:
    """What the emitter did so far: `sent` events, `dropped` (the queue was full), `failed` (the client raised)."""

    sent: int
    dropped: int
    failed: int
    pending: int


class OpenLineageEmitter:
    """A check listener that emits each check as one OpenLineage COMPLETE run event, off the checking thread.

    `client` defaults to `OpenLineageClient()` (configured from `openlineage.yml` or the environment).
    `namespace` is the jobs' namespace (`OPENLINEAGE_NAMESPACE`, else `freshguard`). At most
    `max_queue` checks wait to be sent; `max_records_per_input` bounds the record keys listed per
    input (blocked ones first; the counts are always complete).
    """

    def __init__(
        self,
        policy: Callable[[], Policy],
        *,
        client: OpenLineageClient | None = None,
        namespace: str | None = None,
        max_queue: int = 256,
        max_records_per_input: int = 10_000,
    ) -> None:
        if max_queue < 1 or max_records_per_input < 0:
            raise ConfigurationError(
                f"the OpenLineage emitter needs max_queue >= 1 and max_records_per_input >= 0, "
                f"got {max_queue} and {max_records_per_input}"
            )
        self._client = client if client is not None else _default_client()
        self._policy = policy
        self.namespace = namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
        self._max_records = max_records_per_input
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._closed = False
        self._stop = threading.Event()  # set by close(): the sender stops once the queue is empty
        self._deadline = math.inf  # close()'s deadline (monotonic): what is still queued then is dropped
        self._guards: list[Guard] = []
        self._thread = threading.Thread(target=self._run, name="freshguard-openlineage", daemon=True)
        self._thread.start()

    @classmethod
    def attach(cls, guard: Guard, **options: Any) -> OpenLineageEmitter:
        """An emitter listening to `guard`'s checks (`options` as for the constructor)."""
        emitter = cls(lambda: guard.policy, **options)
        guard.add_listener(emitter)
        emitter._guards.append(guard)
        return emitter

    def __call__(self, result: CheckResult, records: Sequence[Any]) -> None:
        """Queue one check (the guard calls this after every check); never blocks, never raises."""
        if self._closed:
            return
        try:
            self._queue.put_nowait((result, self._policy()))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                dropped = self.dropped
            if _worth_saying(dropped):
                _log.warning(
                    "OpenLineage queue full (%d waiting): the event of run %s is dropped (%d dropped so far); "
                    "is the lineage receiver down?",
                    self._queue.maxsize, result.run_id, dropped,
                )  # fmt: skip

    def stats(self) -> EmitterStats:
        """Counts so far, for metrics: sent, dropped (queue full), failed (the client raised), pending."""
        with self._lock:
            return EmitterStats(self.sent, self.dropped, self.failed, self._queue.qsize())

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued check is sent (or failed); False when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Stop listening, send what is queued and close the client, all within `timeout` seconds.

        True when everything queued was sent (or failed) and the client closed in time. False when
        the receiver is too slow: the sender thread is then left to finish the event it is sending,
        drops what is still queued (counted in `dropped`) and only then closes the client, so the
        client is never closed under a running send. The thread is a daemon: it never holds up exit.
        """
        deadline = time.monotonic() + timeout
        if not self._closed:
            self._closed = True
            for guard in self._guards:
                guard.remove_listener(self)
            self._deadline = deadline
            self._stop.set()
            # Wakes the sender if it waits on an empty queue; a full queue means it is busy and sees `_stop`
            # once the queue is empty.
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            _log.warning(
                "the OpenLineage emitter did not finish within %gs (is the lineage receiver slow?); the event being "
                "sent is left to finish, what is still queued is dropped, and the client is closed after",
                timeout,
            )
            return False
        return True

    def __enter__(self) -> OpenLineageEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        from guard.integrations._openlineage_facets import run_event

        late = 0
        while not (self._stop.is_set() and self._queue.empty()):
            item = self._queue.get()
            try:
                if item is None:
                    continue
                if self._stop.is_set() and time.monotonic() >= self._deadline:
                    late += 1  # close() has given up waiting: no new send is started
                    with self._lock:
                        self.dropped += 1
                    continue
                result, policy = item
                event = run_event(result, policy, namespace=self.namespace, max_records_per_input=self._max_records)
                self._client.emit(event)
            except Exception:
                with self._lock:
                    self.failed += 1
                    failed = self.failed
                if _worth_saying(failed):
                    _log.warning("an OpenLineage event could not be sent (%d failed so far)", failed, exc_info=True)
            else:
                with self._lock:
                    self.sent += 1
            finally:
                self._queue.task_done()
        if late:
            _log.warning("%d queued OpenLineage events were dropped: close() timed out before they were sent", late)
        self._close_client()

    def _close_client(self) -> None:
        """Close the client from the sender thread, once no send can be running any more."""
        left = self._deadline - time.monotonic()
        try:
            self._client.close(-1.0 if math.isinf(left) else max(0.0, left))  # -1: the client's "no limit"
        except Exception:  # a transport that cannot close cleanly must not fail a shutdown
            _log.exception("the OpenLineage client did not close cleanly")


def emit_openlineage(guard: Guard, **options: Any) -> OpenLineageEmitter:
    """Emit every check of `guard` as an OpenLineage run event from now on; returns the emitter (close it)."""
    return OpenLineageEmitter.attach(guard, **options)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _switched_on(env: Mapping[str, str]) -> bool:
    """Whether FRESHGUARD_OPENLINEAGE asks for OpenLineage events (ConfigurationError when it is neither)."""
    switch = env.get("FRESHGUARD_OPENLINEAGE", "").strip().lower()
    if switch in _FALSE:
        return False
    if switch not in _TRUE:
        raise ConfigurationError(f"FRESHGUARD_OPENLINEAGE must be true or false, got {switch!r}")
    return True


def emitter_from_environment(guard: Guard, environ: Mapping[str, str] | None = None) -> OpenLineageEmitter | None:
    """The service's switch: an emitter on `guard` when FRESHGUARD_OPENLINEAGE is true, else None.

    FRESHGUARD_OPENLINEAGE_QUEUE bounds the queue (default 256); the client itself is configured
    by openlineage.yml or the OPENLINEAGE_* variables, as always.
    """
    env = os.environ if environ is None else environ
    if not _switched_on(env):
        return None
    size = env.get("FRESHGUARD_OPENLINEAGE_QUEUE", "256")
    if not size.isdigit() or int(size) < 1:
        raise ConfigurationError(
            f"FRESHGUARD_OPENLINEAGE_QUEUE must be a whole number of checks, 1 or more, got {size!r}"
        )
    return emit_openlineage(guard, max_queue=int(size))


def emit_audit(
    run: SparkRun, *, inputs: Sequence[str], output: str | None, environ: Mapping[str, str] | None = None
) -> bool:
    """Send an audit on Spark as one OpenLineage event when FRESHGUARD_OPENLINEAGE is true; whether it was sent.

    A client that cannot send is logged, never raised: lineage must not fail the audit it describes.
    """
    env = os.environ if environ is None else environ
    if not _switched_on(env):
        return False
    from guard.integrations._openlineage_facets import audit_event

    client = _default_client()
    namespace = env.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
    try:
        client.emit(audit_event(run, namespace=namespace, inputs=inputs, output=output))
    except Exception:  # a transport that fails: the audit itself is done and kept
        _log.exception("the OpenLineage event of audit run %s was not sent", run.run_id)
        return False
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return True


def _default_client() -> OpenLineageClient:
    try:
        from openlineage.client import OpenLineageClient
    except ImportError as exc:
        raise ConfigurationError(
            "OpenLineage emission needs the openlineage-python client: pip install 'freshguard[openlineage]'"
        ) from exc
    try:
        return OpenLineageClient()
    except Exception as exc:  # a broken openlineage.yml or transport setting
        raise ConfigurationError(
            f"the OpenLineage client could not be configured ({exc}); check openlineage.yml "
            "(or OPENLINEAGE_CONFIG) and the OPENLINEAGE_* environment variables"
        ) from exc


def _worth_saying(count: int) -> bool:
    """Log the first of a run of failures, then every hundredth: a receiver that is down must not flood the log."""
    return count == 1 or count % 100 == 0
