"""Alembic environment for wegent's schema. It runs only through `wegent_storage._migrate` (`wegent db upgrade`),
which passes an open connection inside a transaction holding the upgrade lock; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

from wegent_storage._tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("wegent's migrations run through `wegent db upgrade`, not the alembic command")

context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
