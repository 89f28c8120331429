"""The lineage store: SQLAlchemy tables, queries and Alembic migrations. The only database code."""

from guard.lineage.store import LineageStore

__all__ = ["LineageStore"]
