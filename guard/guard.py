"""`Guard`: a policy, a lineage store and the check that runs before every model call."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import is_not
from types import TracebackType
from typing import TYPE_CHECKING, Any

from guard._ids import new_run_id
from guard._timestamps import utc_now
from guard.checks.compiled import CompiledPolicy, compile_policy
from guard.decisions import Action, CheckResult, Entity, PolicyRef
from guard.engine import DEFAULT_PANDERA_THRESHOLD, Batch, finish, owner_versions, screen
from guard.errors import ConfigurationError, InputError
from guard.limits import MAX_ID_LENGTH, MAX_NAME_LENGTH, consumer_problem, text_problem
from guard.policy.model import Policy
from guard.records import Record

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

    from guard.columnar.check import FrameResult, Where
    from guard.health import PointHealth
    from guard.lineage.store import LineageStore
    from guard.spark.check import SparkCheck

#: Called after every check with its result and the records as checked; see `Guard.add_listener`.
CheckListener = Callable[[CheckResult, Sequence[Any]], None]
_log = logging.getLogger("freshguard")


class Guard:
    """Checks records against a policy and writes every decision to the lineage store.

    `store` is a database URL (`sqlite:///freshguard.db`, `postgresql+psycopg://...`),
    an open `LineageStore`, or None to check without writing lineage (supersession
    watermarks are then kept in memory for the life of the guard). Open a `LineageStore` yourself
    to set its deadline (`timeout_s`) or group commit; the guard then leaves closing it to you.
    """

    def __init__(
        self,
        policy: Policy,
        store: str | LineageStore | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        pandera_threshold: int = DEFAULT_PANDERA_THRESHOLD,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._compiled = compile_policy(policy, self._environ)
        self._pandera_threshold = pandera_threshold
        self._owns_store = isinstance(store, str)
        if isinstance(store, str):
            from guard.lineage.store import LineageStore

            store = LineageStore(store)
        self.store: LineageStore | None = store
        self._memory: dict[Entity, datetime] = {}
        self._memory_lock = threading.Lock()
        self._policy_lock = threading.Lock()
        self._listeners: tuple[CheckListener, ...] = ()

    @property
    def policy(self) -> Policy:
        """The policy checks run under now."""
        return self._compiled.policy

    def use_policy(self, policy: Policy) -> None:
        """Switch to another policy; checks already running finish under the old one."""
        compiled = compile_policy(policy, self._environ)
        with self._policy_lock:
            self._compiled = compiled

    def publish_policy(
        self, policy: Policy, *, text: str, media_type: str = "application/yaml", published_by: str
    ) -> dict[str, Any]:
        """Keep `policy` as a new version in the store and check under it from now on.

        Refused (VersionConflictError) unless its version is higher than every version published;
        ConfigurationError when a signing key it names is not set. `text` is the policy as written.
        """
        compiled = compile_policy(policy, self._environ)
        store = self._require_store("published policy versions")
        row = store.publish_policy(
            name=policy.name,
            version=policy.version,
            content_hash=compiled.hash,
            text=text,
            media_type=media_type,
            published_by=published_by,
            published_at=utc_now(),
            origin=policy.origin,
        )
        with self._policy_lock:
            self._compiled = compiled
        return row

    def sync_policy(self, *, force: bool = False) -> bool:
        """Switch to the newest version published in the store (by any process) if it is newer; True if so.

        With `force`, switch to it whenever it differs from the policy in force, even at a lower version.
        """
        if self.store is None:
            return False
        latest = self.store.latest_policy_version()
        if latest is None or (latest <= self._compiled.policy.version and not force):
            return False
        with self._policy_lock:
            row = self.store.newest_policy()
            if row is None or (row["version"] <= self._compiled.policy.version and not force):
                return False
            if row["version"] == self._compiled.policy.version and row["content_hash"] == self._compiled.hash:
                return False
            self._compiled = compile_policy(policy_of_version(row), self._environ)
        return True

    def _require_store(self, what: str) -> LineageStore:
        if self.store is None:
            raise ConfigurationError(f"{what} are kept in the lineage store, and this guard runs without one")
        return self.store

    def check(
        self,
        records: Iterable[Any],
        *,
        pipeline: str,
        now: datetime | None = None,
        consumer: Mapping[str, Any] | None = None,
    ) -> CheckResult:
        """Decide every record; `result.allowed` holds the ones that may reach the model."""
        screened = self._screen(records, pipeline, now, consumer)
        result, learned = self._conclude(screened, self._watermarks(screened.first))
        if self.store is not None:
            self.store.record_check(result, screened.envelopes, learned)
        elif learned:
            self._remember(learned)
        return self._told(result, screened.envelopes)

    async def acheck(
        self,
        records: Iterable[Any],
        *,
        pipeline: str,
        now: datetime | None = None,
        consumer: Mapping[str, Any] | None = None,
    ) -> CheckResult:
        """`check` for asyncio code: the same decisions and lineage, and the event loop never waits on the store.

        The deciding runs on the calling loop (keep batches small: a few hundred records); reading
        watermarks and keeping the lineage are awaited.
        """
        screened = self._screen(records, pipeline, now, consumer)
        store = self.store
        if store is None:
            result, learned = self._conclude(screened, self._memory)
            if learned:
                self._remember(learned)
            return self._told(result, screened.envelopes)
        wanted = screened.first.entities()
        known = await store.awatermarks(wanted) if wanted else {}
        result, learned = self._conclude(screened, known)
        await store.arecord_check(result, screened.envelopes, learned)
        return self._told(result, screened.envelopes)

    def _screen(
        self, records: Iterable[Any], pipeline: str, now: datetime | None, consumer: Mapping[str, Any] | None
    ) -> _Screened:
        """The arguments checked and the first pass run: everything a check does before it needs the store."""
        started = time.perf_counter()
        _check_arguments(pipeline, consumer)
        batch = _as_sequence(records)
        moment = _moment(now)
        compiled = self._compiled
        if set(map(type, batch)) <= _PLAIN:  # as nearly always: dicts, as sent (a copy of the list)
            envelopes = list(batch)
        else:  # isinstance asks pydantic's metaclass, in Python: only when some record may be a Record
            envelopes = [r.to_envelope() if isinstance(r, Record) else r for r in batch]
        first = screen(envelopes, compiled, moment)
        return _Screened(started, pipeline, consumer, batch, envelopes, moment, compiled, first)

    def _conclude(
        self, screened: _Screened, known: Mapping[Entity, datetime]
    ) -> tuple[CheckResult, dict[Entity, datetime]]:
        """The check's result, given the watermarks it needs, and the owner versions it taught."""
        first = screened.first
        table = finish(first, known, pandera_threshold=self._pandera_threshold)
        # Only versions newer than the watermark just read can raise it (watermarks never go down).
        learned = {
            entity: version
            for entity, version in owner_versions(first, table).items()
            if (mark := known.get(entity)) is None or version > mark
        }
        block = Action.BLOCK
        compiled = screened.compiled
        consumer = screened.consumer
        result = CheckResult(
            run_id=new_run_id(),
            pipeline=screened.pipeline,
            policy=PolicyRef(compiled.policy.name, compiled.policy.version, compiled.hash),
            checked_at=screened.moment,
            decisions=table,
            allowed=tuple(compress(screened.records, map(is_not, table.actions, repeat(block)))),
            duration_s=time.perf_counter() - screened.started,
            consumer=dict(consumer) if consumer is not None else None,
        )
        return result, learned

    def _told(self, result: CheckResult, envelopes: Sequence[Any]) -> CheckResult:
        for listener in self._listeners:
            _tell(listener, result, envelopes)
        return result

    def check_frame(
        self,
        frame: Any,
        *,
        pipeline: str,
        now: datetime | None = None,
        consumer: Mapping[str, Any] | None = None,
    ) -> FrameResult:
        """Decide every row of a table of records as one check, with the columnar engine (docs/columnar.md)."""
        from guard.columnar.check import check_frame

        _check_arguments(pipeline, consumer)
        moment = _moment(now)
        where = self._where()
        return check_frame(
            frame,
            self._compiled,
            where,
            pipeline=pipeline,
            now=moment,
            consumer=consumer,
            pandera_threshold=self._pandera_threshold,
        )

    def _where(self) -> Where:
        """Where a columnar or Spark check finds watermarks and keeps what it learns: the store, or memory."""
        from guard.columnar.check import Where

        return Where(self.store, self._memory, self._remember)

    def check_dataframe(
        self, frame: SparkDataFrame, *, pipeline: str, now: datetime | None = None, row_index: str | None = None
    ) -> SparkCheck:
        """Plan the check of a Spark DataFrame of records as one check, on the cluster (docs/spark.md).

        Lazy: the returned check's `decisions` (a Spark DataFrame with `check_frame`'s columns) runs when it
        is written or counted; `guard.spark.record_check` keeps the run and its tallies in the store.
        """
        from guard.spark.check import plan_check

        _check_arguments(pipeline, None)
        moment = _moment(now)
        where = self._where()
        return plan_check(
            frame,
            self._compiled,
            where,
            pipeline=pipeline,
            now=moment,
            pandera_threshold=self._pandera_threshold,
            row_index=row_index,
        )

    def add_listener(self, listener: CheckListener) -> None:
        """Call `listener(result, records)` after every check, once its lineage is written.

        `records` are the envelopes as checked (dicts). A listener runs on the checking thread, so
        it must return quickly (queue its work); an exception it raises is logged, never re-raised:
        what listens to checks (lineage emitters, alerts) must never fail or slow one.
        """
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: CheckListener) -> None:
        """Stop calling `listener`."""
        self._listeners = tuple(known for known in self._listeners if known is not listener)

    def note_change(self, object: str, key: str, updated_at: datetime) -> None:  # noqa: A002
        """Learn from the owner that an entity changed: older copies become SUPERSEDED."""
        self.note_changes([(object, key, updated_at)])

    def note_changes(self, changes: Iterable[tuple[str, str, datetime]]) -> None:
        """Learn several owner change notifications at once."""
        versions: dict[Entity, datetime] = {}
        policy = self._compiled.policy
        horizon = utc_now() + policy.clock_skew
        for obj, key, when in changes:
            if obj not in policy.objects:
                raise InputError(f"a change to {obj!r}, which policy {policy.name} does not cover")
            if not isinstance(key, str) or not key:
                raise InputError(f"a change to {obj} needs a key (a non-empty string), got {key!r:.80}")
            if (problem := text_problem(key, MAX_ID_LENGTH)) is not None:
                raise InputError(f"the key of a change to {obj} {problem}")
            updated_at = _aware_utc(when, f"the change to {obj} {key}: updated_at")
            if updated_at > horizon:
                raise InputError(
                    f"the change to {obj} {key} is dated {updated_at.isoformat()}, in the future; "
                    "a watermark never goes down, so a wrong date would block every later copy"
                )
            entity = (obj, key)
            if entity not in versions or updated_at > versions[entity]:
                versions[entity] = updated_at
        if self.store is not None:
            self.store.advance_watermarks(versions, learned_from="change", at=utc_now())
        else:
            self._remember(versions)

    def note_heartbeat(
        self,
        source: str,
        object: str,  # noqa: A002
        synced_at: datetime,
        writer: str = "",
    ) -> dict[str, Any]:
        """Keep an integration's report that its sync job `writer` synced `object` from `source` as of `synced_at`."""
        policy = self._compiled.policy
        if source not in policy.sources:
            raise InputError(f"a heartbeat from {source!r:.80}, which is not a source of policy {policy.name}")
        spec = policy.objects.get(object)
        if spec is None:
            raise InputError(f"a heartbeat from {source} for {object!r:.80}, which policy {policy.name} does not cover")
        if source != spec.owner and source not in spec.replicas:
            raise InputError(
                f"a heartbeat from {source} for {object}, but {source} neither owns {object} (its owner is "
                f"{spec.owner}) nor serves copies of it; add {source} to objects.{object}.replicas first"
            )
        if (problem := text_problem(writer, MAX_NAME_LENGTH)) is not None:
            raise InputError(f"the heartbeat's writer {problem}")
        received_at = utc_now()
        synced = _aware_utc(synced_at, f"the heartbeat from {source} for {object}: synced_at")
        if synced > received_at + policy.clock_skew:
            raise InputError(
                f"the heartbeat from {source} for {object} is dated {synced.isoformat()}, in the future; "
                "send the time the sync finished, with its UTC offset"
            )
        return self._require_store("heartbeats").record_heartbeat(source, object, synced, received_at, writer=writer)

    def health(self, now: datetime | None = None, *, coverage: bool = True) -> list[PointHealth]:
        """SLA health of every integration point, from the store's recent checks and heartbeats.

        `coverage=False` skips counting the distinct entities of each window (the costliest query),
        for callers that judge states only (the watcher, metrics).
        """
        from guard.health import DEFAULT_WINDOW, allowed_points, integration_health, window_starts, windows

        store = self._require_store("check history and heartbeats")
        moment = _moment(now)
        policy = self._compiled.policy
        windowed = windows(policy)
        entities: dict[tuple[str, str], int] = {}
        points = allowed_points(policy)
        for window in {DEFAULT_WINDOW, *windowed.values()} if coverage else ():
            judged = [point for point in points | set(windowed) if windowed.get(point, DEFAULT_WINDOW) == window]
            entities.update(store.entities_since(moment - window, judged))
        tallies = store.window_tallies(window_starts(policy, moment), moment)
        return integration_health(policy, tallies, store.latest_heartbeats(), moment, entities)

    def close(self) -> None:
        """Close the lineage store if this guard opened it."""
        if self._owns_store and self.store is not None:
            self.store.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _watermarks(self, batch: Batch) -> Mapping[Entity, datetime]:
        if self.store is not None:
            wanted = batch.entities()
            return self.store.watermarks(wanted) if wanted else {}
        # Only looked up by key (never iterated), so a concurrent `_remember` cannot upset it.
        return self._memory

    def _remember(self, versions: Mapping[Entity, datetime]) -> None:
        with self._memory_lock:
            for entity, version in versions.items():
                known = self._memory.get(entity)
                if known is None or version > known:
                    self._memory[entity] = version


@dataclass(frozen=True, slots=True)
class _Screened:
    """A check between its first pass and the store's watermarks."""

    started: float
    pipeline: str
    consumer: Mapping[str, Any] | None
    records: Sequence[Any]
    envelopes: list[Any]
    moment: datetime
    compiled: CompiledPolicy
    first: Batch


def _check_arguments(pipeline: object, consumer: object) -> None:
    """A check's pipeline and consumer, refused (InputError) when the store could not keep them."""
    if not isinstance(pipeline, str) or not pipeline:
        raise InputError(f"pipeline must be a name of 1 to {MAX_NAME_LENGTH} characters, got {pipeline!r:.80}")
    if (problem := text_problem(pipeline, MAX_NAME_LENGTH)) is not None:
        raise InputError(f"pipeline must be a name of 1 to {MAX_NAME_LENGTH} characters: it {problem}")
    if consumer is not None:
        if not isinstance(consumer, Mapping):
            raise InputError(
                f"consumer must be a mapping such as {{'model': ..., 'call_id': ...}}, got {consumer!r:.80}"
            )
        if (problem := consumer_problem(consumer)) is not None:
            raise InputError(problem)


def _aware_utc(moment: object, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise InputError(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{what} must be timezone-aware (for example datetime.now(UTC))")
    return moment.astimezone(UTC)


def _tell(listener: CheckListener, result: CheckResult, records: Sequence[Any]) -> None:
    try:
        listener(result, records)
    except Exception:  # a listener's failure is its own: the check has been decided and kept
        _log.exception("a check listener (%r) failed on run %s; the check itself stands", listener, result.run_id)


def policy_of_version(row: Mapping[str, Any]) -> Policy:
    """The policy of a version the store keeps (as `publish_policy` wrote it)."""
    from guard.policy import parse_policy_text

    return parse_policy_text(row["text"], row["media_type"], origin=f"policy version {row['version']} in the store")


_PLAIN = frozenset({dict})


def _as_sequence(records: Iterable[Any]) -> Sequence[Any]:
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise InputError(f"records must be a list of records, got {type(records).__name__}")
    return records if isinstance(records, list | tuple) else list(records)


def _moment(now: datetime | None) -> datetime:
    """The check's time: `now` as aware UTC (a ValueError for a naive one), or the clock's."""
    return utc_now() if now is None else _aware_utc(now, "now")
