"""map_index in the key of task instances, their tries' history and rendered fields (dynamic task mapping)

Every existing row is an unmapped task's: map_index -1 (docs/adr/0007-dynamic-task-mapping.md).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TI_KEY = ["dag_id", "run_id", "task_id"]
_RENDERED_KEY = ["dag_id", "run_id", "task_id", "try_number"]


def _map_index(*, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column("map_index", sa.Integer(), nullable=False, server_default="-1", primary_key=primary_key)


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _add_to_primary_key(table: str, columns: list[str]) -> None:
    """Adds map_index and makes `columns` (which name it) the table's primary key."""
    if _sqlite():
        # SQLite cannot alter a primary key: batch mode copies the table, map_index a key column.
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.add_column(_map_index(primary_key=True))
            batch_op.create_primary_key(f"pk_{table}", columns)
    else:
        op.add_column(table, _map_index())
        op.execute(f"ALTER TABLE {table} DROP PRIMARY KEY, ADD PRIMARY KEY ({', '.join(columns)})")


def upgrade() -> None:
    _add_to_primary_key("task_instance", [*_TI_KEY, "map_index"])
    _add_to_primary_key("rendered_task_instance_fields", [*_TI_KEY, "map_index", "try_number"])
    with op.batch_alter_table("task_instance_history", schema=None) as batch_op:
        batch_op.add_column(_map_index())
        batch_op.drop_constraint("uq_tih_try", type_="unique")
        batch_op.create_unique_constraint("uq_tih_try", [*_TI_KEY, "map_index", "try_number"])


def _drop_from_primary_key(table: str, columns: list[str]) -> None:
    if _sqlite():
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.create_primary_key(f"pk_{table}", columns)
            batch_op.drop_column("map_index")
    else:
        op.execute(f"ALTER TABLE {table} DROP PRIMARY KEY, ADD PRIMARY KEY ({', '.join(columns)})")
        op.drop_column(table, "map_index")


def downgrade() -> None:
    # Only an unmapped task's rows fit the old keys.
    for table in ("task_instance", "task_instance_history", "rendered_task_instance_fields"):
        op.execute(f"DELETE FROM {table} WHERE map_index <> -1")
    with op.batch_alter_table("task_instance_history", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tih_try", type_="unique")
        batch_op.create_unique_constraint("uq_tih_try", [*_TI_KEY, "try_number"])
        batch_op.drop_column("map_index")
    _drop_from_primary_key("task_instance", _TI_KEY)
    _drop_from_primary_key("rendered_task_instance_fields", _RENDERED_KEY)
