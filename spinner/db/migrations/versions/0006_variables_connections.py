"""variables and connections: values Fernet-encrypted at rest

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spinner.db.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "variable",
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("val", spinner.db.models.LongText(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("updated_at", spinner.db.models.UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "connection",
        sa.Column("conn_id", sa.String(length=250), nullable=False),
        sa.Column("conn_type", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=500), nullable=False),
        sa.Column("schema", sa.String(length=500), nullable=False),
        sa.Column("login", sa.String(length=500), nullable=False),
        sa.Column("password", spinner.db.models.LongText(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("extra", spinner.db.models.LongText(), nullable=True),
        sa.Column("updated_at", spinner.db.models.UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("conn_id"),
    )


def downgrade() -> None:
    op.drop_table("connection")
    op.drop_table("variable")
