"""Published policy versions: every version kept with its text, hash, publisher and time.

Functions over a connection the store opened (and its transaction); `LineageStore` exposes them.
The version is the table's primary key, so two publishers racing for one version cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.errors import VersionConflictError
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
