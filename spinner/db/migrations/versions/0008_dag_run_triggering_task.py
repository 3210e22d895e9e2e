"""dag_run triggering_dag_id / run_id / task_id: the task that triggered a run (TriggerDagRunOperator)

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dag_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("triggering_dag_id", sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column("triggering_run_id", sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column("triggering_task_id", sa.String(length=250), nullable=True))
        batch_op.create_index("ix_dag_run_triggering", ["triggering_dag_id", "triggering_run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dag_run", schema=None) as batch_op:
        batch_op.drop_index("ix_dag_run_triggering")
        batch_op.drop_column("triggering_task_id")
        batch_op.drop_column("triggering_run_id")
        batch_op.drop_column("triggering_dag_id")
