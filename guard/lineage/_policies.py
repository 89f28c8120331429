"""Published policy versions: every version kept with its text, hash, publisher and time.

Functions over a connection the store opened (and its transaction); `LineageStore` exposes them.
The version is the table's primary key, so two publishers racing for one version cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.errors import StoreError, VersionConflictError
from guard.lineage._base import StoreBase
from guard.lineage._values import storable
from guard.lineage.tables import policy_versions

_SUMMARY = (
    policy_versions.c.version,
    policy_versions.c.name,
    policy_versions.c.content_hash,
    policy_versions.c.media_type,
    policy_versions.c.published_by,
    policy_versions.c.published_at,
)


def latest_version(conn: Connection) -> int | None:
    """The highest version published, or None before the first."""
    value = conn.execute(sa.select(sa.func.max(policy_versions.c.version))).scalar()
    return None if value is None else int(value)


def publish(
    conn: Connection,
    *,
    name: str,
    version: int,
    content_hash: str,
    text: str,
    media_type: str,
    published_by: str,
    published_at: datetime,
    origin: str,
) -> dict[str, Any]:
    """Keep a new version; VersionConflictError unless it is higher than every version published."""
    latest = latest_version(conn)
    if latest is not None and version <= latest:
        raise VersionConflictError(origin, version, latest)
    row = {
        "version": version,
        "name": storable(name),
        "content_hash": content_hash,
        "text": storable(text),
        "media_type": media_type,
        "published_by": storable(published_by),
        "published_at": published_at,
    }
    conn.execute(policy_versions.insert(), row)
    return row


def newest(conn: Connection) -> dict[str, Any] | None:
    """The newest version published, with its text; None before the first."""
    row = (
        conn.execute(sa.select(policy_versions).order_by(policy_versions.c.version.desc()).limit(1)).mappings().first()
    )
    return None if row is None else dict(row)


def history(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The versions published, newest first, without their text."""
    query = sa.select(*_SUMMARY).order_by(policy_versions.c.version.desc()).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]


def one(conn: Connection, version: int) -> dict[str, Any] | None:
    """One published version with its text, or None."""
    row = conn.execute(sa.select(policy_versions).where(policy_versions.c.version == version)).mappings().first()
    return None if row is None else dict(row)


#: Serialises policy publishing on one PostgreSQL database.
_PUBLISH_LOCK_KEY = 7414244


class PolicyStore(StoreBase):
    """Publishing policy versions and reading them back."""

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
                return publish(
                    conn, name=name, version=version, content_hash=content_hash, text=text, media_type=media_type,
                    published_by=published_by, published_at=published_at, origin=origin,
                )  # fmt: skip
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):  # another publisher took the version first
                raise VersionConflictError(origin, version, version) from exc
            raise

    def latest_policy_version(self) -> int | None:
        """The highest policy version published, or None before the first."""
        with self._connect("read the policy version") as conn:
            return latest_version(conn)

    def newest_policy(self) -> dict[str, Any] | None:
        """The newest policy version published, with its text; None before the first."""
        with self._connect("read the policy") as conn:
            return newest(conn)

    def policy_history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The policy versions published, newest first (without their text)."""
        with self._connect("read the policy history") as conn:
            return history(conn, limit)

    def policy_version(self, version: int) -> dict[str, Any] | None:
        """One published policy version with its text, or None."""
        with self._connect("read a policy version") as conn:
            return one(conn, version)
