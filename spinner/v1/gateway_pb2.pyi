from spinner.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dag(_message.Message):
    __slots__ = ("dag_id", "partition", "tier", "schedule", "is_paused", "owner", "tags", "description", "bundle_version", "fileloc", "timezone", "params")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    IS_PAUSED_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    FILELOC_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    partition: str
    tier: int
    schedule: str
    is_paused: bool
    owner: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    description: str
    bundle_version: str
    fileloc: str
    timezone: str
    params: _containers.RepeatedCompositeFieldContainer[DagParam]
    def __init__(self, dag_id: _Optional[str] = ..., partition: _Optional[str] = ..., tier: _Optional[int] = ..., schedule: _Optional[str] = ..., is_paused: _Optional[bool] = ..., owner: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., bundle_version: _Optional[str] = ..., fileloc: _Optional[str] = ..., timezone: _Optional[str] = ..., params: _Optional[_Iterable[_Union[DagParam, _Mapping]]] = ...) -> None: ...

class DagParam(_message.Message):
    __slots__ = ("name", "has_default", "default_json", "schema_json", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HAS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    has_default: bool
    default_json: str
    schema_json: str
    description: str
    def __init__(self, name: _Optional[str] = ..., has_default: _Optional[bool] = ..., default_json: _Optional[str] = ..., schema_json: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListDagsRequest(_message.Message):
    __slots__ = ("limit", "offset")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    limit: int
    offset: int
    def __init__(self, limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListDagsResponse(_message.Message):
    __slots__ = ("dags", "total")
    DAGS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    dags: _containers.RepeatedCompositeFieldContainer[Dag]
    total: int
    def __init__(self, dags: _Optional[_Iterable[_Union[Dag, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class TriggerDagRequest(_message.Message):
    __slots__ = ("dag_id", "conf_json", "run_id")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    conf_json: str
    run_id: str
    def __init__(self, dag_id: _Optional[str] = ..., conf_json: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class DagRun(_message.Message):
    __slots__ = ("dag_id", "run_id", "state", "run_type", "logical_date", "start_date", "end_date", "conf_json")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUN_TYPE_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    run_id: str
    state: str
    run_type: str
    logical_date: str
    start_date: str
    end_date: str
    conf_json: str
    def __init__(self, dag_id: _Optional[str] = ..., run_id: _Optional[str] = ..., state: _Optional[str] = ..., run_type: _Optional[str] = ..., logical_date: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., conf_json: _Optional[str] = ...) -> None: ...

class ListDagRunsRequest(_message.Message):
    __slots__ = ("dag_id", "limit")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    limit: int
    def __init__(self, dag_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListDagRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[DagRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[DagRun, _Mapping]]] = ...) -> None: ...

class TaskInstance(_message.Message):
    __slots__ = ("dag_id", "run_id", "task_id", "state", "try_number", "max_tries", "start_date", "end_date", "map_index")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TRY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIES_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    run_id: str
    task_id: str
    state: str
    try_number: int
    max_tries: int
    start_date: str
    end_date: str
    map_index: int
    def __init__(self, dag_id: _Optional[str] = ..., run_id: _Optional[str] = ..., task_id: _Optional[str] = ..., state: _Optional[str] = ..., try_number: _Optional[int] = ..., max_tries: _Optional[int] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., map_index: _Optional[int] = ...) -> None: ...

class ListTaskInstancesRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.DagRunRef
    def __init__(self, run: _Optional[_Union[_common_pb2.DagRunRef, _Mapping]] = ...) -> None: ...

class ListTaskInstancesResponse(_message.Message):
    __slots__ = ("task_instances",)
    TASK_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    task_instances: _containers.RepeatedCompositeFieldContainer[TaskInstance]
    def __init__(self, task_instances: _Optional[_Iterable[_Union[TaskInstance, _Mapping]]] = ...) -> None: ...

class GetTaskLogRequest(_message.Message):
    __slots__ = ("key", "from_offset")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    from_offset: int
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., from_offset: _Optional[int] = ...) -> None: ...

class GetTaskLogResponse(_message.Message):
    __slots__ = ("lines", "next_offset", "source", "complete", "try_number")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    TRY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    next_offset: int
    source: str
    complete: bool
    try_number: int
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., next_offset: _Optional[int] = ..., source: _Optional[str] = ..., complete: _Optional[bool] = ..., try_number: _Optional[int] = ...) -> None: ...

class GetDagRequest(_message.Message):
    __slots__ = ("dag_id",)
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    def __init__(self, dag_id: _Optional[str] = ...) -> None: ...

class GetDagRunRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.DagRunRef
    def __init__(self, run: _Optional[_Union[_common_pb2.DagRunRef, _Mapping]] = ...) -> None: ...

class WatchDagRunRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.DagRunRef
    def __init__(self, run: _Optional[_Union[_common_pb2.DagRunRef, _Mapping]] = ...) -> None: ...

class DagRunEvent(_message.Message):
    __slots__ = ("run", "task_instances")
    RUN_FIELD_NUMBER: _ClassVar[int]
    TASK_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    run: DagRun
    task_instances: _containers.RepeatedCompositeFieldContainer[TaskInstance]
    def __init__(self, run: _Optional[_Union[DagRun, _Mapping]] = ..., task_instances: _Optional[_Iterable[_Union[TaskInstance, _Mapping]]] = ...) -> None: ...

class GetRenderedFieldsRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ...) -> None: ...

class RenderedFields(_message.Message):
    __slots__ = ("key", "fields_json", "rendered_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    RENDERED_AT_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    fields_json: str
    rendered_at: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., fields_json: _Optional[str] = ..., rendered_at: _Optional[str] = ...) -> None: ...

class ListXComsRequest(_message.Message):
    __slots__ = ("run", "task_id", "map_index")
    RUN_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.DagRunRef
    task_id: str
    map_index: int
    def __init__(self, run: _Optional[_Union[_common_pb2.DagRunRef, _Mapping]] = ..., task_id: _Optional[str] = ..., map_index: _Optional[int] = ...) -> None: ...

class ListXComsResponse(_message.Message):
    __slots__ = ("xcoms",)
    class XCom(_message.Message):
        __slots__ = ("key", "value_json", "map_index", "size", "timestamp")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
        MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
        SIZE_FIELD_NUMBER: _ClassVar[int]
        TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
        key: str
        value_json: str
        map_index: int
        size: int
        timestamp: str
        def __init__(self, key: _Optional[str] = ..., value_json: _Optional[str] = ..., map_index: _Optional[int] = ..., size: _Optional[int] = ..., timestamp: _Optional[str] = ...) -> None: ...
    XCOMS_FIELD_NUMBER: _ClassVar[int]
    xcoms: _containers.RepeatedCompositeFieldContainer[ListXComsResponse.XCom]
    def __init__(self, xcoms: _Optional[_Iterable[_Union[ListXComsResponse.XCom, _Mapping]]] = ...) -> None: ...

class SelectedTasks(_message.Message):
    __slots__ = ("run", "task_ids", "include_upstream", "include_downstream", "map_indexes")
    RUN_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    MAP_INDEXES_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.DagRunRef
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    include_upstream: bool
    include_downstream: bool
    map_indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, run: _Optional[_Union[_common_pb2.DagRunRef, _Mapping]] = ..., task_ids: _Optional[_Iterable[str]] = ..., include_upstream: _Optional[bool] = ..., include_downstream: _Optional[bool] = ..., map_indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class ClearTasksRequest(_message.Message):
    __slots__ = ("selection", "only_failed")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    ONLY_FAILED_FIELD_NUMBER: _ClassVar[int]
    selection: SelectedTasks
    only_failed: bool
    def __init__(self, selection: _Optional[_Union[SelectedTasks, _Mapping]] = ..., only_failed: _Optional[bool] = ...) -> None: ...

class MarkTasksRequest(_message.Message):
    __slots__ = ("selection", "state")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    selection: SelectedTasks
    state: str
    def __init__(self, selection: _Optional[_Union[SelectedTasks, _Mapping]] = ..., state: _Optional[str] = ...) -> None: ...

class TasksActedOn(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class VariableInfo(_message.Message):
    __slots__ = ("key", "value", "description", "updated_at", "updated_by")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    description: str
    updated_at: str
    updated_by: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., description: _Optional[str] = ..., updated_at: _Optional[str] = ..., updated_by: _Optional[str] = ...) -> None: ...

class VariableListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VariableListResponse(_message.Message):
    __slots__ = ("variables",)
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    variables: _containers.RepeatedCompositeFieldContainer[VariableInfo]
    def __init__(self, variables: _Optional[_Iterable[_Union[VariableInfo, _Mapping]]] = ...) -> None: ...

class VariableGetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class VariableSetRequest(_message.Message):
    __slots__ = ("key", "value", "description")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    description: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class VariableSetResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: bool
    def __init__(self, created: _Optional[bool] = ...) -> None: ...

class VariableDeleteRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class VariableDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConnectionInfo(_message.Message):
    __slots__ = ("conn_id", "conn_type", "description", "host", "schema", "login", "password", "port", "extra", "uri", "has_password", "has_extra", "updated_at", "updated_by")
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    CONN_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    HAS_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    HAS_EXTRA_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    conn_id: str
    conn_type: str
    description: str
    host: str
    schema: str
    login: str
    password: str
    port: int
    extra: str
    uri: str
    has_password: bool
    has_extra: bool
    updated_at: str
    updated_by: str
    def __init__(self, conn_id: _Optional[str] = ..., conn_type: _Optional[str] = ..., description: _Optional[str] = ..., host: _Optional[str] = ..., schema: _Optional[str] = ..., login: _Optional[str] = ..., password: _Optional[str] = ..., port: _Optional[int] = ..., extra: _Optional[str] = ..., uri: _Optional[str] = ..., has_password: _Optional[bool] = ..., has_extra: _Optional[bool] = ..., updated_at: _Optional[str] = ..., updated_by: _Optional[str] = ...) -> None: ...

class ConnectionListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConnectionListResponse(_message.Message):
    __slots__ = ("connections",)
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[ConnectionInfo]
    def __init__(self, connections: _Optional[_Iterable[_Union[ConnectionInfo, _Mapping]]] = ...) -> None: ...

class ConnectionGetRequest(_message.Message):
    __slots__ = ("conn_id",)
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    conn_id: str
    def __init__(self, conn_id: _Optional[str] = ...) -> None: ...

class ConnectionSetRequest(_message.Message):
    __slots__ = ("conn_id", "uri", "connection")
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    conn_id: str
    uri: str
    connection: ConnectionInfo
    def __init__(self, conn_id: _Optional[str] = ..., uri: _Optional[str] = ..., connection: _Optional[_Union[ConnectionInfo, _Mapping]] = ...) -> None: ...

class ConnectionSetResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: bool
    def __init__(self, created: _Optional[bool] = ...) -> None: ...

class ConnectionDeleteRequest(_message.Message):
    __slots__ = ("conn_id",)
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    conn_id: str
    def __init__(self, conn_id: _Optional[str] = ...) -> None: ...

class ConnectionDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
