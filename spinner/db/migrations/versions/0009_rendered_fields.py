"""rendered_task_instance_fields: each try's templated fields as rendered, shown in the UI and the API

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spinner.db.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rendered_task_instance_fields",
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("rendered_fields", spinner.db.models.LongText(), nullable=False),
        sa.Column("rendered_at", spinner.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dag_id", "run_id", "task_id", "try_number"),
    )


def downgrade() -> None:
    op.drop_table("rendered_task_instance_fields")
