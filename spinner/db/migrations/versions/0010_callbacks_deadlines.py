"""dag_callback: DAG callbacks and missed deadlines recorded by the scheduler, run by the executor

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spinner.db.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dag_callback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("partition", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("state", sa.String(length=50), nullable=False),
        sa.Column("bundle_version", sa.String(length=100), nullable=False),
        sa.Column("fileloc", sa.String(length=1000), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", spinner.db.models.UtcDateTime(), nullable=False),
        sa.Column("started_at", spinner.db.models.UtcDateTime(), nullable=True),
        sa.Column("ended_at", spinner.db.models.UtcDateTime(), nullable=True),
        sa.Column("executor", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dag_callback", schema=None) as batch_op:
        batch_op.create_index("ix_dag_callback_partition_state", ["partition", "state"], unique=False)
        batch_op.create_index("ix_dag_callback_dag_id_run_id", ["dag_id", "run_id"], unique=False)


def downgrade() -> None:
    op.drop_table("dag_callback")
