"""The lineage store: every check, every decision, the per-entity watermarks, sync heartbeats and
the model calls that consumed each run. The only SQL (with the helpers of `_feeds`).

SQLite (a file) is the embedded default; PostgreSQL serves a team (`postgresql+psycopg://...`).
Writes of a check's rows go through the driver's fastest bulk path (SQLite executemany,
PostgreSQL COPY), in one transaction with the run and its watermark updates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError, StatementError

from guard.decisions import Action, CheckResult, Entity
from guard.errors import StoreError, VersionConflictError
from guard.lineage import _feeds, _operations, _policies, _tallies
from guard.lineage._values import content_hash, explain, json_value, storable, storable_column
from guard.lineage.tables import UTCDateTime, run_records, runs
from guard.tallies import Tally, tally_check

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Entity", "LineageStore", "alembic_config", "content_hash"]

_RECORD_COLUMNS = (
    "run_id", "position", "record_id", "object", "key", "source", "observed_at",
    "updated_at", "content_hash", "age_s", "action", "reasons", "explanations",
)  # fmt: skip
#: SQLite looks watermarks up with IN lists of this many keys (it caps bound parameters).
_SCAN_FROM = 1000  # keys asked of one object from which a scan may beat index lookups
_LOOKUP_CHUNK = 400
#: PostgreSQL looks up every key of an object at once, joined to an array: psycopg prepares a
#: statement it runs often, and the generic plan of `key IN ($2, ..., $401)` made while the table
#: was small scans it (25 s for 50,000 keys); a join stays a hash or an index join whatever the plan.
_PG_WATERMARK_LOOKUP = sa.text(
    "SELECT w.key, w.updated_at FROM unnest(CAST(:keys AS text[])) AS wanted(key) "
    "JOIN watermarks AS w ON w.object = :object AND w.key = wanted.key"
).columns(sa.column("key", sa.Text), sa.column("updated_at", UTCDateTime()))
#: The (backend, driver) pairs the store speaks: its SQL is written for these two.
_SUPPORTED = {"sqlite": "pysqlite", "postgresql": "psycopg"}
#: Serialises migrations across processes on one PostgreSQL database (`pg_advisory_xact_lock`).
_MIGRATION_LOCK_KEY = 7414243
#: Serialises policy publishing on one PostgreSQL database.
_PUBLISH_LOCK_KEY = 7414244
#: Alembic keeps its `context` and `op` in process globals: one migration at a time per process.
_migrating = threading.Lock()


class LineageStore:
    """Where checks are remembered. Open one per process and share it; it is thread-safe."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = _safe(url)  # shown in messages: never the password
        parsed = _parse_url(url)
        self._password = parsed.password if isinstance(parsed.password, str) else None
        try:
            self.engine: Engine = sa.create_engine(parsed, **_engine_options(parsed))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the lineage store {_safe(url)}: {self._scrub(exc)}") from exc
        self.dialect = self.engine.dialect.name
        # An in-memory SQLite database is one connection that every thread shares, one at a time.
        self._serial: AbstractContextManager[Any] = threading.RLock() if _in_memory(parsed) else nullcontext()
        # The COPY path runs on the driver's own cursor, outside SQLAlchemy's error translation.
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.engine.dispose()
                raise

    def migrate(self) -> None:
        """Bring the schema up to date with Alembic, in one transaction, one migrator at a time."""
        from alembic import command
        from alembic.util import CommandError

        with _migrating, self._connect("migrate its schema") as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            else:
                # pysqlite runs DDL outside any transaction and takes the write lock late;
                # BEGIN IMMEDIATE makes the migration atomic and waits out another process's.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                command.upgrade(alembic_config(conn), "head")
            except CommandError as exc:
                raise StoreError(
                    f"the lineage store {self.url} cannot be migrated: {exc}; its schema may come from "
                    "a newer Freshguard: upgrade Freshguard, or use another database"
                ) from exc

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _connect(self, doing: str) -> Iterator[Connection]:
        """A connection in a transaction; every database error leaves as a StoreError."""
        with self._serial:
            try:
                connection = self.engine.connect()
            except (SQLAlchemyError, self._driver_error) as exc:
                raise StoreError(
                    f"cannot reach the lineage store {self.url} to {doing}: {self._scrub(exc)}; "
                    + (
                        "check that its folder exists and is writable"
                        if self.dialect == "sqlite"
                        else "check that the database is up and that the URL is right"
                    )
                ) from exc
            try:
                with connection, connection.begin():
                    yield connection
            except (SQLAlchemyError, self._driver_error) as exc:
                raise StoreError(f"the lineage store {self.url} failed to {doing}: {self._scrub(exc)}") from exc

    def _scrub(self, exc: BaseException) -> str:
        """The driver's own words for an error, without the SQL, parameters or password."""
        cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
        text = f"{type(cause).__name__}: {str(cause).strip()}"
        return text.replace(self._password, "***") if self._password else text

    def watermarks(self, entities: Iterable[Entity]) -> dict[Entity, datetime]:
        """The newest owner `updated_at` known for each of these entities (absent when none)."""
        asked = list(entities)
        stored = _storable_entities(asked)
        wanted: dict[str, list[str]] = {}
        for obj, key in set(stored):
            wanted.setdefault(obj, []).append(key)
        found: dict[Entity, datetime] = {}
        if not wanted:
            return found
        with self._connect("read watermarks") as conn:
            if self.dialect == "postgresql":
                for obj, keys in wanted.items():
                    for key, updated_at in conn.execute(_PG_WATERMARK_LOOKUP, {"object": obj, "keys": keys}):
                        found[(obj, key)] = updated_at
            else:
                _sqlite_watermarks(conn, wanted, found)
        if stored is asked:
            return found
        return {entity: found[kept] for entity, kept in zip(asked, stored, strict=True) if kept in found}

    def advance_watermarks(self, versions: Mapping[Entity, datetime], *, learned_from: str, at: datetime) -> None:
        """Raise each entity's watermark to the given version; an older version never lowers it."""
        if not versions:
            return
        with self._connect("write watermarks") as conn:
            self._advance(conn, versions, learned_from, at)

    def record_check(self, result: CheckResult, records: Sequence[Any], learned: Mapping[Entity, datetime]) -> None:
        """Write a check: its run, one row per record, and the owner versions it taught."""
        table = result.decisions
        counts = result.counts
        run_id = storable(result.run_id)
        run_row = {
            "run_id": run_id,
            "pipeline": storable(result.pipeline),
            "checked_at": result.checked_at,
            "policy_name": storable(result.policy.name),
            "policy_version": result.policy.version,
            "policy_hash": result.policy.hash,
            "verdict": result.verdict.value,
            "records": len(table),
            "allowed": counts[Action.ALLOW],
            "warned": counts[Action.WARN],
            "blocked": counts[Action.BLOCK],
            "duration_ms": result.duration_s * 1000,
            "consumer": json_value(result.consumer) if result.consumer is not None else None,
        }
        stamp = _memo(_sqlite_time) if self.dialect == "sqlite" else _identity
        rows = [
            (
                run_id,
                position,
                record_id,
                obj,
                key,
                source,
                None if observed is None else stamp(observed),
                None if updated is None else stamp(updated),
                content_hash(record),
                age,
                action.value,
                ",".join([r.code.value for r in reasons]) if reasons else "",
                explain(reasons) if reasons else None,
            )
            for position, (record_id, obj, key, source, observed, updated, record, age, action, reasons) in enumerate(
                zip(
                    storable_column(table.ids), storable_column(table.objects), storable_column(table.keys),
                    storable_column(table.sources), table.observed, table.updated,
                    records, table.ages, table.actions, table.reasons, strict=True,
                )
            )
        ]  # fmt: skip
        call = _feeds.consumer_call(result.consumer)
        tallies = tally_check(table)
        with self._connect("record a check") as conn:
            conn.execute(runs.insert(), run_row)
            if rows:
                self._insert_records(conn, rows)
            _tallies.insert(conn, run_id, result.checked_at, storable(result.pipeline), tallies)
            if learned:
                self._advance(conn, learned, "owner_record", result.checked_at)
            if call is not None:
                _feeds.insert_call(conn, run_id, *call, linked_at=result.checked_at)

    def link_consumption(
        self,
        run_id: str,
        model: str,
        call_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        *,
        linked_at: datetime,
    ) -> dict[str, Any] | None:
        """Record that a model call consumed a run's allowed records; None when the store has no such run."""
        with self._connect("link a run to a model call") as conn:
            known = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == storable(run_id))).first()
            if known is None:
                return None
            return _feeds.insert_call(conn, run_id, model, call_id, extra, linked_at=linked_at)

    def record_heartbeat(
        self, source: str, obj: str, synced_at: datetime, received_at: datetime, *, writer: str = ""
    ) -> dict[str, Any]:
        """Keep a sync heartbeat: `writer` of `source` finished syncing `obj` as of `synced_at`."""
        with self._connect("record a heartbeat") as conn:
            return _feeds.insert_heartbeat(conn, source, obj, synced_at, received_at, writer=writer)

    def latest_heartbeats(self) -> dict[tuple[str, str, str], datetime]:
        """The newest sync reported by each writer of each (source, object)."""
        with self._connect("read heartbeats") as conn:
            return _feeds.latest_heartbeats(conn)

    def heartbeats_since(self, start: datetime) -> list[dict[str, Any]]:
        """Every heartbeat received since `start`, oldest first."""
        with self._connect("read heartbeats") as conn:
            return _feeds.heartbeats_since(conn, start)

    def distinct_keys(self, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        """How many distinct entity keys each (source, object) had in the runs checked in [start, end)."""
        query = (
            sa.select(run_records.c.source, run_records.c.object, sa.func.count(sa.distinct(run_records.c.key)))
            .join(runs, runs.c.run_id == run_records.c.run_id)
            .where(runs.c.checked_at >= start, runs.c.checked_at < end, run_records.c.source.is_not(None),
                   run_records.c.object.is_not(None))
            .group_by(run_records.c.source, run_records.c.object)
        )  # fmt: skip
        with self._connect("count the entities seen") as conn:
            return {(source, obj): count for source, obj, count in conn.execute(query)}

    def tallies_since(self, start: datetime, end: datetime | None = None) -> list[Tally]:
        """The per-integration-point tallies of every run checked in [start, end), oldest first."""
        with self._connect("read run tallies") as conn:
            return _tallies.since(conn, start, end)

    def publish_policy(
        self,
        *,
        name: str,
        version: int,
        content_hash: str,
        text: str,
        media_type: str,
        published_by: str,
        published_at: datetime,
        origin: str = "<policy>",
    ) -> dict[str, Any]:
        """Keep a new policy version; VersionConflictError unless it is higher than every one published."""
        try:
            with self._connect("publish a policy") as conn:
                # Publishers take turns on PostgreSQL; on SQLite the primary key settles a race.
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PUBLISH_LOCK_KEY})")
                return _policies.publish(
                    conn, name=name, version=version, content_hash=content_hash, text=text, media_type=media_type,
                    published_by=published_by, published_at=published_at, origin=origin,
                )  # fmt: skip
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):  # another publisher took the version first
                raise VersionConflictError(origin, version, version) from exc
            raise

    @contextmanager
    def operations(self) -> Iterator[_operations.Operations]:
        """The operations tables in one transaction that one evaluator at a time holds (across processes)."""
        with self._connect("evaluate integration health") as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_operations.EVALUATION_LOCK_KEY})")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield _operations.Operations(conn)

    def incidents(
        self, *, open_only: bool = False, since: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Incidents, newest first; `since` keeps the open ones and those recovered since then."""
        with self._connect("list incidents") as conn:
            return _operations.list_incidents(conn, open_only=open_only, since=since, limit=limit)

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        """One incident, or None."""
        with self._connect("read an incident") as conn:
            return _operations.one_incident(conn, incident_id)

    def acknowledge_incident(self, incident_id: int, by: str, at: datetime) -> dict[str, Any] | None:
        """Acknowledge an incident (the first acknowledgement stands); None when there is none such."""
        with self._connect("acknowledge an incident") as conn:
            return _operations.acknowledge(conn, incident_id, by, at)

    def incident_impact(self, source: str, obj: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The runs that decided records of (source, obj) in [start, end], and their model calls."""
        with self._connect("read an incident's impact") as conn:
            return _operations.impact(conn, source, obj, start, end)

    def state_changes_since(self, start: datetime) -> list[dict[str, Any]]:
        """Integration points' state changes since `start`, oldest first."""
        with self._connect("read state changes") as conn:
            return _operations.changes_since(conn, start)

    def due_alerts(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Alerts to send now, in order per channel and point."""
        with self._connect("read the alert outbox") as conn:
            return _operations.due_alerts(conn, now, limit)

    def lease_alert(self, alert_id: int, attempts: int, until: datetime) -> bool:
        """Claim an alert for one delivery attempt; False when another worker has it."""
        with self._connect("claim an alert") as conn:
            return _operations.lease(conn, alert_id, attempts, until)

    def alert_delivered(self, alert_id: int, at: datetime) -> None:
        """Mark an alert delivered."""
        with self._connect("mark an alert delivered") as conn:
            _operations.delivered(conn, alert_id, at)

    def alert_failed(self, alert_id: int, error: str, retry_at: datetime | None, at: datetime) -> None:
        """Record a failed attempt: retry at `retry_at`, or give up (None)."""
        with self._connect("record an alert failure") as conn:
            _operations.attempt_failed(conn, alert_id, error, retry_at, at)

    def alert_counts(self) -> dict[str, int]:
        """How many alerts are delivered, pending and failed."""
        with self._connect("count alerts") as conn:
            return _operations.alert_counts(conn)

    def latest_policy_version(self) -> int | None:
        """The highest policy version published, or None before the first."""
        with self._connect("read the policy version") as conn:
            return _policies.latest_version(conn)

    def newest_policy(self) -> dict[str, Any] | None:
        """The newest policy version published, with its text; None before the first."""
        with self._connect("read the policy") as conn:
            return _policies.newest(conn)

    def policy_history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The policy versions published, newest first (without their text)."""
        with self._connect("read the policy history") as conn:
            return _policies.history(conn, limit)

    def policy_version(self, version: int) -> dict[str, Any] | None:
        """One published policy version with its text, or None."""
        with self._connect("read a policy version") as conn:
            return _policies.one(conn, version)

    def _insert_records(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        columns = ", ".join(f'"{c}"' for c in _RECORD_COLUMNS)
        if self.dialect == "postgresql":
            # The driver connection is the one SQLAlchemy's transaction runs on: the COPY joins it.
            with (
                conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
                cursor.copy(f"COPY run_records ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in _RECORD_COLUMNS)
            conn.exec_driver_sql(f"INSERT INTO run_records ({columns}) VALUES ({marks})", rows)  # noqa: S608

    def _advance(self, conn: Connection, versions: Mapping[Entity, datetime], learned_from: str, at: datetime) -> None:
        stamp = _sqlite_time if self.dialect == "sqlite" else _identity
        mark = "?" if self.dialect == "sqlite" else "%s"
        sql = (
            f'INSERT INTO watermarks (object, "key", updated_at, learned_from, learned_at) '  # noqa: S608
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) "
            'ON CONFLICT (object, "key") DO UPDATE SET updated_at = excluded.updated_at, '
            "learned_from = excluded.learned_from, learned_at = excluded.learned_at "
            "WHERE excluded.updated_at > watermarks.updated_at"
        )
        when = stamp(at)
        # One row per entity as stored (two keys may store alike), in key order: concurrent
        # writers then lock the rows they share in the same order and cannot deadlock.
        newest: dict[Entity, datetime] = {}
        for entity, version in zip(_storable_entities(list(versions)), versions.values(), strict=True):
            known = newest.get(entity)
            if known is None or version > known:
                newest[entity] = version
        params = [(obj, key, stamp(version), learned_from, when) for (obj, key), version in sorted(newest.items())]
        conn.exec_driver_sql(sql, params)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with every decision it made, or None when the store has no such run."""
        run_id = storable(run_id)
        with self._connect("read a run") as conn:
            run = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if run is None:
                return None
            records = conn.execute(
                sa.select(run_records).where(run_records.c.run_id == run_id).order_by(run_records.c.position)
            ).mappings()
            decisions = [_record_out(r) for r in records]
            return {**run, "decisions": decisions, "model_calls": _feeds.calls_by_run(conn, [run_id])[run_id]}

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        verdict: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Runs newest first, filtered; `after` (checked_at, run_id) continues a listing past that run."""
        query = sa.select(runs).order_by(runs.c.checked_at.desc(), runs.c.run_id).limit(limit)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == storable(pipeline))
        if verdict is not None:
            query = query.where(runs.c.verdict == verdict)
        if since is not None:
            query = query.where(runs.c.checked_at >= since)
        if until is not None:
            query = query.where(runs.c.checked_at < until)
        if after is not None:
            at, run_id = after
            query = query.where(
                sa.or_(runs.c.checked_at < at, sa.and_(runs.c.checked_at == at, runs.c.run_id > storable(run_id)))
            )
        with self._connect("list runs") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def entity_history(self, obj: str, key: str) -> list[dict[str, Any]]:
        """Every decision about one entity, oldest first, with the run's pipeline, policy and model calls."""
        query = (
            sa.select(run_records, runs.c.pipeline, runs.c.checked_at, runs.c.policy_name, runs.c.policy_version)
            .join(runs, runs.c.run_id == run_records.c.run_id)
            .where(run_records.c.object == storable(obj), run_records.c.key == storable(key))
            .order_by(runs.c.checked_at, runs.c.run_id, run_records.c.position)
        )
        with self._connect("read an entity's history") as conn:
            history = [_record_out(row) for row in conn.execute(query).mappings()]
            calls = _feeds.calls_by_run(conn, [decision["run_id"] for decision in history])
        for decision in history:
            decision["model_calls"] = calls[decision["run_id"]]
        return history


def _sqlite_watermarks(conn: Connection, wanted: Mapping[str, list[str]], found: dict[Entity, datetime]) -> None:
    """Watermarks from SQLite through the driver: by key lists, or by one scan when most rows are wanted."""
    rows_stored = conn.exec_driver_sql("SELECT max(rowid) FROM watermarks").scalar() or 0
    parse = _memo_parse()
    for obj, keys in wanted.items():
        if len(keys) >= _SCAN_FROM and len(keys) * 4 >= rows_stored:
            # Reading every row of the object beats thousands of index probes once most are asked for.
            asked = set(keys)
            rows: Iterable[tuple[str, str]] = (
                row
                for row in conn.exec_driver_sql('SELECT "key", updated_at FROM watermarks WHERE object = ?', (obj,))
                if row[0] in asked
            )
        else:
            rows = (
                row
                for start in range(0, len(keys), _LOOKUP_CHUNK)
                for row in conn.exec_driver_sql(
                    'SELECT "key", updated_at FROM watermarks WHERE object = ? AND "key" IN '  # noqa: S608
                    f"({', '.join('?' * len(keys[start : start + _LOOKUP_CHUNK]))})",
                    (obj, *keys[start : start + _LOOKUP_CHUNK]),
                )
            )
        for key, text in rows:
            found[(obj, key)] = parse(text)


def _memo_parse() -> Callable[[str], datetime]:
    """SQLite's naive UTC timestamp text as an aware datetime, parsed once per distinct text."""
    seen: dict[str, datetime] = {}

    def parse(text: str) -> datetime:
        moment = seen.get(text)
        if moment is None:
            moment = seen[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return moment

    return parse


def _record_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored decision: `reasons` as codes, `explanations` as the reasons in full (code, message, detail)."""
    out = dict(row)
    out["reasons"] = [code for code in row["reasons"].split(",") if code]
    out["explanations"] = row["explanations"] or []
    return out


def alembic_config(connection: Connection) -> Config:
    """An Alembic `Config` for the store's migrations, to run on `connection` (as `migrate` does)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


def _parse_url(url: str) -> URL:
    """The URL of a database this store can speak to, or a StoreError that says which would do."""
    try:
        parsed = sa.engine.make_url(url)
    except (SQLAlchemyError, ValueError, TypeError) as exc:
        raise StoreError(
            f"the lineage store URL {_safe(url)} does not parse ({type(exc).__name__}); "
            "use sqlite:///path/to/freshguard.db or postgresql+psycopg://user@host:5432/database"
        ) from exc
    if parsed.drivername == "postgres":  # the spelling Heroku and others hand out
        parsed = parsed.set(drivername="postgresql")
    backend, _, driver = parsed.drivername.partition("+")
    if backend in _SUPPORTED and not driver:  # SQLAlchemy 2.0 would pick psycopg2 for postgresql://
        driver = _SUPPORTED[backend]
        parsed = parsed.set(drivername=f"{backend}+{driver}")
    if _SUPPORTED.get(backend) != driver:
        raise StoreError(
            f"the lineage store supports SQLite (sqlite:///path.db) and PostgreSQL through psycopg "
            f"(postgresql+psycopg://...), not {parsed.drivername} ({_safe(url)})"
        )
    return parsed


def _storable_entities(entities: list[Entity]) -> list[Entity]:
    """The entities as the store keeps them; `entities` itself when nothing needs replacing."""
    objects = [obj for obj, _ in entities]
    keys = [key for _, key in entities]
    stored_objects, stored_keys = storable_column(objects), storable_column(keys)
    if stored_objects is objects and stored_keys is keys:
        return entities
    return list(zip(stored_objects, stored_keys, strict=True))


def _in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _engine_options(url: URL) -> dict[str, Any]:
    if _in_memory(url):  # one connection for every thread: each new one would be another, empty database
        return {"connect_args": {"check_same_thread": False}, "poolclass": sa.pool.StaticPool}
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _memo(convert: Callable[[datetime], str]) -> Callable[[datetime], str]:
    """`convert` remembered per value: a check's records share few distinct timestamps."""
    seen: dict[datetime, str] = {}

    def remembered(moment: datetime) -> str:
        text = seen.get(moment)
        if text is None:
            text = seen[moment] = convert(moment)
        return text

    return remembered


def _identity(moment: datetime) -> datetime:
    return moment


def _safe(url: str) -> str:
    """The URL without its password (in the user part or as a `password` parameter), for messages."""
    try:
        parsed = sa.engine.make_url(url)
    except (SQLAlchemyError, ValueError):
        return "<unparseable URL>"
    secret = {name: "***" for name in parsed.query if name.lower() in ("password", "passwd", "sslpassword")}
    return parsed.update_query_dict(secret).render_as_string(hide_password=True)
