"""role_permission.source: 'dag' (synced from a DAG file's access_control) or 'admin' (an Admin's grant)

The column joins the primary key: a role may hold one permission both ways. What existing rows
become: a row that a DAG's access_control, as last parsed (serialized_dag), declares is 'dag'
(the sync keeps it in step with the file from now on); every other row is 'admin' (the
built-in DAG:* grant of spinner-users, grants on every DAG or on a DAG that declares nothing
for that role: only an Admin changes them from now on). A grant an Admin made that the DAG
file also declares cannot be told apart: it becomes 'dag' only, and goes when the file drops it.

Downgrade keeps one row of a permission a role holds both ways.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_role = sa.table("role", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
_permission = sa.table(
    "permission", sa.column("id", sa.Integer()), sa.column("action", sa.String()), sa.column("resource", sa.String())
)
_role_permission = sa.table(
    "role_permission",
    sa.column("role_id", sa.Integer()),
    sa.column("permission_id", sa.Integer()),
    sa.column("source", sa.String()),
)
_serialized_dag = sa.table("serialized_dag", sa.column("dag_id", sa.String()), sa.column("data", sa.JSON()))
_DAG_ACTIONS = ("can_dag_read", "can_dag_edit")


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _declared() -> list[tuple[int, int]]:
    """(role_id, permission_id) of the rows the DAGs' access_control declares."""
    conn = op.get_bind()
    roles = {name: rid for rid, name in conn.execute(sa.select(_role.c.id, _role.c.name))}
    perms = {
        (action, resource): pid
        for pid, action, resource in conn.execute(
            sa.select(_permission.c.id, _permission.c.action, _permission.c.resource)
        )
    }
    found: set[tuple[int, int]] = set()
    for dag_id, data in conn.execute(sa.select(_serialized_dag.c.dag_id, _serialized_dag.c.data)):
        acl = (data or {}).get("access_control") or {}
        for role, actions in acl.items():
            for action in actions or ():
                rid, pid = roles.get(str(role)), perms.get((str(action), f"DAG:{dag_id}"))
                if action in _DAG_ACTIONS and rid is not None and pid is not None:
                    found.add((rid, pid))
    return sorted(found)


def _source(*, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column("source", sa.String(length=10), nullable=False, server_default="admin", primary_key=primary_key)


def upgrade() -> None:
    columns = "role_id, permission_id, source"
    if _sqlite():
        # SQLite cannot alter a primary key: batch mode copies the table, source a key column.
        with op.batch_alter_table("role_permission", recreate="always") as batch_op:
            batch_op.add_column(_source(primary_key=True))
            batch_op.create_primary_key("pk_role_permission", columns.split(", "))
    else:
        op.add_column("role_permission", _source())
        op.execute(f"ALTER TABLE role_permission DROP PRIMARY KEY, ADD PRIMARY KEY ({columns})")
    declared = _declared()
    if declared:
        op.get_bind().execute(
            _role_permission.update()
            .where(_role_permission.c.role_id == sa.bindparam("rid"))
            .where(_role_permission.c.permission_id == sa.bindparam("pid"))
            .values(source="dag"),
            [{"rid": rid, "pid": pid} for rid, pid in declared],
        )


def downgrade() -> None:
    conn = op.get_bind()
    both = conn.execute(
        sa.select(_role_permission.c.role_id, _role_permission.c.permission_id)
        .group_by(_role_permission.c.role_id, _role_permission.c.permission_id)
        .having(sa.func.count() > 1)
    ).all()
    if both:
        conn.execute(
            _role_permission.delete()
            .where(_role_permission.c.role_id == sa.bindparam("rid"))
            .where(_role_permission.c.permission_id == sa.bindparam("pid"))
            .where(_role_permission.c.source == "dag"),
            [{"rid": rid, "pid": pid} for rid, pid in both],
        )
    if _sqlite():
        with op.batch_alter_table("role_permission", recreate="always") as batch_op:
            batch_op.create_primary_key("pk_role_permission", ["role_id", "permission_id"])
            batch_op.drop_column("source")
    else:
        op.execute("ALTER TABLE role_permission DROP PRIMARY KEY, ADD PRIMARY KEY (role_id, permission_id)")
        op.drop_column("role_permission", "source")
