"""Alembic environment: runs on the connection the lineage store hands over."""

from __future__ import annotations

from alembic import context

from guard.lineage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the lineage store's migrations run on a connection they are handed: open LineageStore(url), "
        "which migrates, or pass guard.lineage.store.alembic_config(connection) to alembic.command"
    )
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
