"""The lineage store: every check, every decision, and the per-entity watermarks. The only SQL.

SQLite (a file) is the embedded default; PostgreSQL serves a team (`postgresql+psycopg://...`).
Writes of a check's rows go through the driver's fastest bulk path (SQLite executemany,
PostgreSQL COPY), in one transaction with the run and its watermark updates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from guard.decisions import Action, CheckResult
from guard.errors import StoreError
from guard.lineage.tables import run_records, runs, watermarks

Entity = tuple[str, str]
_RECORD_COLUMNS = (
    "run_id", "position", "record_id", "object", "key", "source", "observed_at",
    "updated_at", "content_hash", "age_s", "action", "reasons",
)  # fmt: skip
_LOOKUP_CHUNK = 400


class LineageStore:
    """Where checks are remembered. Open one per process and share it; it is thread-safe."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        try:
            self.engine: Engine = sa.create_engine(url, **_engine_options(url))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the lineage store {_safe(url)}: {exc}") from exc
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"the lineage store supports SQLite and PostgreSQL, not {self.dialect} ({_safe(url)})")
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema up to date with Alembic (serialised across processes on PostgreSQL)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self._connect("migrate") as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7414243)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _connect(self, doing: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the lineage store {_safe(self.url)} failed to {doing}: {exc.__class__.__name__}: {exc}") from exc

    def watermarks(self, entities: Iterable[Entity]) -> dict[Entity, datetime]:
        """The newest owner `updated_at` known for each of these entities (absent when none)."""
        wanted: dict[str, list[str]] = {}
        for obj, key in entities:
            wanted.setdefault(obj, []).append(key)
        found: dict[Entity, datetime] = {}
        if not wanted:
            return found
        with self._connect("read watermarks") as conn:
            for obj, keys in wanted.items():
                for start in range(0, len(keys), _LOOKUP_CHUNK):
                    chunk = keys[start : start + _LOOKUP_CHUNK]
                    rows = conn.execute(
                        sa.select(watermarks.c.key, watermarks.c.updated_at).where(
                            watermarks.c.object == obj, watermarks.c.key.in_(chunk)
                        )
                    )
                    for key, updated_at in rows:
                        found[(obj, key)] = updated_at
        return found

    def advance_watermarks(self, versions: Mapping[Entity, datetime], *, learned_from: str, at: datetime) -> None:
        """Raise each entity's watermark to the given version; an older version never lowers it."""
        with self._connect("write watermarks") as conn:
            self._advance(conn, versions, learned_from, at)

    def record_check(self, result: CheckResult, records: Sequence[Any], learned: Mapping[Entity, datetime]) -> None:
        """Write a check: its run, one row per record, and the owner versions it taught."""
        table = result.decisions
        counts = result.counts
        run_row = {
            "run_id": result.run_id,
            "pipeline": result.pipeline,
            "checked_at": result.checked_at,
            "policy_name": result.policy.name,
            "policy_version": result.policy.version,
            "policy_hash": result.policy.hash,
            "verdict": result.verdict.value,
            "records": len(table),
            "allowed": counts[Action.ALLOW],
            "warned": counts[Action.WARN],
            "blocked": counts[Action.BLOCK],
            "duration_ms": result.duration_s * 1000,
            "consumer": dict(result.consumer) if result.consumer is not None else None,
        }
        stamp = _memo(_sqlite_time) if self.dialect == "sqlite" else _identity
        run_id = result.run_id
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
            )
            for position, (record_id, obj, key, source, observed, updated, record, age, action, reasons) in enumerate(
                zip(
                    table.ids, table.objects, table.keys, table.sources, table.observed, table.updated,
                    records, table.ages, table.actions, table.reasons, strict=True,
                )
            )
        ]  # fmt: skip
        with self._connect("record a check") as conn:
            conn.execute(runs.insert(), run_row)
            if rows:
                self._insert_records(conn, rows)
            if learned:
                self._advance(conn, learned, "owner_record", result.checked_at)

    def _insert_records(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        columns = ", ".join(f'"{c}"' for c in _RECORD_COLUMNS)
        if self.dialect == "postgresql":
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY run_records ({columns}) FROM STDIN") as copy:
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
        params = [(obj, key, stamp(version), learned_from, when) for (obj, key), version in versions.items()]
        conn.exec_driver_sql(sql, params)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run with every decision it made, or None when the store has no such run."""
        with self._connect("read a run") as conn:
            run = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if run is None:
                return None
            records = conn.execute(
                sa.select(run_records).where(run_records.c.run_id == run_id).order_by(run_records.c.position)
            ).mappings()
            return {**run, "decisions": [_record_out(r) for r in records]}

    def list_runs(self, *, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent runs, newest first."""
        query = sa.select(runs).order_by(runs.c.checked_at.desc(), runs.c.run_id).limit(limit)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        with self._connect("list runs") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def entity_history(self, obj: str, key: str) -> list[dict[str, Any]]:
        """Every decision about one entity, oldest first, with the run's pipeline and policy."""
        query = (
            sa.select(run_records, runs.c.pipeline, runs.c.checked_at, runs.c.policy_name, runs.c.policy_version)
            .join(runs, runs.c.run_id == run_records.c.run_id)
            .where(run_records.c.object == obj, run_records.c.key == key)
            .order_by(runs.c.checked_at, run_records.c.position)
        )
        with self._connect("read an entity's history") as conn:
            return [_record_out(row) for row in conn.execute(query).mappings()]


def content_hash(record: Any) -> str | None:
    """A short hash of what the model would see: the record's content, else its fields."""
    if type(record) is not dict:
        return None
    content = record.get("content")
    if type(content) is str:
        data = content.encode("utf-8", "surrogatepass")
    else:
        fields = record.get("fields")
        if not fields:
            return None
        try:
            data = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            data = json.dumps(fields, sort_keys=True, default=repr).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _record_out(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["reasons"] = [code for code in row["reasons"].split(",") if code]
    return out


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
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
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparseable URL>"

