"""xcom: values task instances push and pull, keyed by run, task, map index and key

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spinner.db.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "xcom",
        sa.Column("dag_run_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("value", spinner.db.models.LongText(), nullable=False),
        sa.Column("timestamp", spinner.db.models.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dag_run_id", "task_id", "map_index", "key"),
    )
    with op.batch_alter_table("xcom", schema=None) as batch_op:
        batch_op.create_index("ix_xcom_dag_id_run_id_task_id", ["dag_id", "run_id", "task_id"], unique=False)


def downgrade() -> None:
    op.drop_table("xcom")
