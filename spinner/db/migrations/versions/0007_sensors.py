"""sensors: task_instance reschedule_count, reschedule_at, first_poke_at (reschedule-mode sensors)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import spinner.db.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reschedule_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("reschedule_at", spinner.db.models.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_poke_at", spinner.db.models.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.drop_column("first_poke_at")
        batch_op.drop_column("reschedule_at")
        batch_op.drop_column("reschedule_count")
