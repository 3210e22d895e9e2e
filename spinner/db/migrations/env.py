"""Alembic environment. Run through spinner.db.migrate, which hands over a live connection."""

from __future__ import annotations

from alembic import context

from spinner.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through spinner.db.migrate (spinner db upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
