"""pools: a pool table with default_pool, and each task instance's pool

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_POOL_SLOTS = 128


def upgrade() -> None:
    pool = op.create_table(
        "pool",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(pool, [{"name": "default_pool", "slots": DEFAULT_POOL_SLOTS, "description": "Default pool"}])
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pool", sa.String(length=250), server_default="default_pool", nullable=False))
        batch_op.add_column(sa.Column("priority_weight", sa.Integer(), server_default="1", nullable=False))
        batch_op.create_index("ix_task_instance_pool_state", ["pool", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.drop_index("ix_task_instance_pool_state")
        batch_op.drop_column("priority_weight")
        batch_op.drop_column("pool")
    op.drop_table("pool")
