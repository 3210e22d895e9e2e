"""SQLAlchemy models: the whole schema. Migrations in spinner/db/migrations mirror this file.

Timestamps are stored as timezone-naive UTC (MySQL DATETIME has no zone); the
`UtcDateTime` type converts to and from aware datetimes at the boundary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID_LEN = 250
XCOM_KEY_LEN = 512


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in Python, naive UTC with microseconds in the database."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class LongText(TypeDecorator[str]):
    """TEXT on SQLite, LONGTEXT on MySQL (tracebacks, DAG code and serialized DAGs get large)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(Text())


class Base(DeclarativeBase):
    pass


class DagModel(Base):
    """One row per DAG id: what the scheduler learned when it last parsed the DAG."""

    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    partition: Mapped[str] = mapped_column(String(100), index=True)
    fileloc: Mapped[str] = mapped_column(String(1000))  # relative to the snapshot root
    tier: Mapped[int] = mapped_column(Integer)
    schedule: Mapped[str | None] = mapped_column(String(100))
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    owner: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_active_runs: Mapped[int] = mapped_column(Integer, default=16)
    max_active_tasks: Mapped[int] = mapped_column(Integer, default=16)
    bundle_version: Mapped[str] = mapped_column(String(100), default="")
    next_dagrun: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_start: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_end: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_parsed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class SerializedDagModel(Base):
    """The JSON form of a parsed DAG; rewritten only when its hash changes."""

    __tablename__ = "serialized_dag"

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    partition: Mapped[str] = mapped_column(String(100), index=True)
    fileloc: Mapped[str] = mapped_column(String(1000))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    dag_hash: Mapped[str] = mapped_column(String(64))
    bundle_version: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class DagCode(Base):
    """The source of each DAG file, by location."""

    __tablename__ = "dag_code"

    fileloc_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    fileloc: Mapped[str] = mapped_column(String(1000))
    source_code: Mapped[str] = mapped_column(LongText)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


# A run in one of these states has not ended: it still schedules tasks (from its bundle version).
ACTIVE_RUN_STATES = ("queued", "running")


class DagRun(Base):
    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", name="uq_dag_run_dag_id_run_id"),
        UniqueConstraint("dag_id", "logical_date", name="uq_dag_run_dag_id_logical_date"),
        Index("ix_dag_run_state", "state"),
        Index("ix_dag_run_triggering", "triggering_dag_id", "triggering_run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_type: Mapped[str] = mapped_column(String(50))  # scheduled | manual | backfill
    state: Mapped[str] = mapped_column(String(50))  # queued | running | success | failed
    logical_date: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    data_interval_start: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    data_interval_end: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    conf: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    partition: Mapped[str] = mapped_column(String(100), index=True)
    bundle_version: Mapped[str] = mapped_column(String(100), default="")
    triggered_by: Mapped[str] = mapped_column(String(200), default="")
    # The task try that triggered this run (TriggerDagRunOperator); None when a person or the schedule did.
    triggering_dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    triggering_run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    triggering_task_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    # W3C traceparent of the trigger, so one trace follows the run through the services.
    trace_context: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    start_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class TaskInstance(Base):
    """The current try of one task in one run. Ended tries are copied to task_instance_history."""

    __tablename__ = "task_instance"
    __table_args__ = (
        Index("ix_task_instance_state", "state"),
        Index("ix_task_instance_partition_state", "partition", "state"),
        Index("ix_task_instance_pool_state", "pool", "state"),
        Index("ix_task_instance_partition_end_date", "partition", "end_date"),
    )

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    # -1: an unmapped task, or a mapped one not expanded yet; 0, 1, ...: a mapped task's instances
    # (docs/adr/0007-dynamic-task-mapping.md).
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1, server_default="-1")
    partition: Mapped[str] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(50))
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    max_tries: Mapped[int] = mapped_column(Integer, default=0)  # retries; total tries = max_tries + 1
    operator: Mapped[str] = mapped_column(String(100), default="")
    queued_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    start_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    duration: Mapped[float | None] = mapped_column()
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    hostname: Mapped[str] = mapped_column(String(1000), default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    executor: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    pool: Mapped[str] = mapped_column(String(250), default="default_pool", server_default="default_pool")
    priority_weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Sensors in reschedule mode (docs/adr/0006-sensor-reschedule.md): how many times this try was rescheduled (its poke
    # process number), when its next poke is due (set while up_for_reschedule), and when its first
    # poke began (the sensor's timeout counts from there).
    reschedule_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reschedule_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    first_poke_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class Pool(Base):
    """A named number of slots shared by every partition; each queued or running try holds one."""

    __tablename__ = "pool"

    name: Mapped[str] = mapped_column(String(250), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")


class TaskInstanceHistory(Base):
    """One row per ended try: the attempts a user sees."""

    __tablename__ = "task_instance_history"
    __table_args__ = (UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "try_number", name="uq_tih_try"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    task_id: Mapped[str] = mapped_column(String(ID_LEN))
    map_index: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(50))
    start_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    duration: Mapped[float | None] = mapped_column()
    hostname: Mapped[str] = mapped_column(String(1000), default="")
    error: Mapped[str] = mapped_column(Text, default="")


class RenderedTaskInstanceFields(Base):
    """A try's templated fields as rendered before it executed (JSON object, each value size-capped)."""

    __tablename__ = "rendered_task_instance_fields"

    dag_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1, server_default="-1")
    try_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    rendered_fields: Mapped[str] = mapped_column(LongText)
    rendered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ImportError_(Base):
    """A DAG file that failed to load, with its traceback. Named with _ to keep the builtin."""

    __tablename__ = "import_error"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partition: Mapped[str] = mapped_column(String(100), index=True)
    filename: Mapped[str] = mapped_column(String(1000))
    stacktrace: Mapped[str] = mapped_column(LongText)
    timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str] = mapped_column(String(300), default="")
    password_hash: Mapped[str] = mapped_column(String(300), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # In every session cookie of the user's; bumping it (logout, password change, disabling)
    # ends all their sessions (gateway/auth.py).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A bearer token of a user, for the CLI and API clients. Only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class Role(Base):
    __tablename__ = "role"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Permission(Base):
    """An action on a resource, e.g. (can_dag_read, DAG:tutorial) or (can_dag_edit, DAG:*)."""

    __tablename__ = "permission"
    __table_args__ = (UniqueConstraint("action", "resource", name="uq_permission_action_resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str] = mapped_column(String(ID_LEN + 10))


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)


class RolePermission(Base):
    """A role's permission, from a DAG file's access_control ('dag') or given by an Admin ('admin').

    A role may hold one permission both ways, as two rows: the DAG sync changes only 'dag' rows,
    the Admin API only 'admin' rows, and what the role may do is the union.
    """

    __tablename__ = "role_permission"

    role_id: Mapped[int] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)
    permission_id: Mapped[int] = mapped_column(ForeignKey("permission.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(10), primary_key=True, default="admin", server_default="admin")


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_dag_id_ts", "dag_id", "ts"),
        Index("ix_audit_log_username_ts", "username", "ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    username: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    dag_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    task_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    remote_addr: Mapped[str] = mapped_column(String(100), default="")
    outcome: Mapped[str] = mapped_column(String(50))  # ok | denied | error
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PartitionLease(Base):
    """Who schedules a partition. The epoch is a fencing token carried by every write."""

    __tablename__ = "partition_lease"

    partition: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(300))
    # gRPC address of the holder, so the gateway can route actions to it.
    address: Mapped[str] = mapped_column(String(300))
    epoch: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    bundle_version: Mapped[str] = mapped_column(String(100), default="")


class XCom(Base):
    """A value a task instance pushed for others to pull (Airflow's XCom), as JSON.

    Keyed by (dag_id, run_id, task_id, map_index, key); the primary key holds the run as
    dag_run.id, because the five columns in full are longer than MySQL's 3072-byte key limit
    (utf8mb4). map_index is -1 for an unmapped task.
    """

    __tablename__ = "xcom"
    # Clearing a task instance's XComs (a new try, a clear) and listing them go by name.
    __table_args__ = (Index("ix_xcom_dag_id_run_id_task_id", "dag_id", "run_id", "task_id"),)

    # No foreign key: MySQL's check would lock the dag_run row on every push, behind the scheduler's locks.
    dag_run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    task_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1, server_default="-1")
    key: Mapped[str] = mapped_column(String(XCOM_KEY_LEN), primary_key=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    value: Mapped[str] = mapped_column(LongText)  # JSON text, at most the executor's xcom_max_bytes
    timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Variable(Base):
    """A key and its value, set by admins and read by tasks. The value is Fernet-encrypted (spinner/fernet.py)."""

    __tablename__ = "variable"

    key: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    val: Mapped[str] = mapped_column(LongText)
    description: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class Connection(Base):
    """How to reach an outside system. Password and extra are Fernet-encrypted; the rest is not secret."""

    __tablename__ = "connection"

    conn_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    conn_type: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(500), default="")
    schema: Mapped[str] = mapped_column(String(500), default="")
    login: Mapped[str] = mapped_column(String(500), default="")
    password: Mapped[str | None] = mapped_column(LongText, nullable=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    extra: Mapped[str | None] = mapped_column(LongText, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class DagCallback(Base):
    """A DAG callback or missed deadline that is due: recorded by the scheduler in the transaction that
    ended the run (or found the deadline passed), run once by the executor in a callback process.

    state: pending (recorded) -> running (the executor launched it) -> success | failed.
    """

    __tablename__ = "dag_callback"
    __table_args__ = (
        Index("ix_dag_callback_partition_state", "partition", "state"),
        Index("ix_dag_callback_dag_id_run_id", "dag_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LEN))
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    partition: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))  # on_success_callback | on_failure_callback | deadline
    state: Mapped[str] = mapped_column(String(50))
    bundle_version: Mapped[str] = mapped_column(String(100), default="")
    fileloc: Mapped[str] = mapped_column(String(1000), default="")  # relative to the snapshot root
    # What the callback's context says beyond the run: reason, deadline_at, reference, notify (emails).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    executor: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str] = mapped_column(Text, default="")
