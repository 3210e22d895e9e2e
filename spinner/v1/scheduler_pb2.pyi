from spinner.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskSelection(_message.Message):
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

class ClearTaskInstancesRequest(_message.Message):
    __slots__ = ("selection", "only_failed", "requested_by")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    ONLY_FAILED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    selection: TaskSelection
    only_failed: bool
    requested_by: str
    def __init__(self, selection: _Optional[_Union[TaskSelection, _Mapping]] = ..., only_failed: _Optional[bool] = ..., requested_by: _Optional[str] = ...) -> None: ...

class ClearTaskInstancesResponse(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MarkTaskInstancesRequest(_message.Message):
    __slots__ = ("selection", "state", "requested_by")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    selection: TaskSelection
    state: str
    requested_by: str
    def __init__(self, selection: _Optional[_Union[TaskSelection, _Mapping]] = ..., state: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class MarkTaskInstancesResponse(_message.Message):
    __slots__ = ("task_ids",)
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SetPausedRequest(_message.Message):
    __slots__ = ("dag_id", "paused", "requested_by")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    paused: bool
    requested_by: str
    def __init__(self, dag_id: _Optional[str] = ..., paused: _Optional[bool] = ..., requested_by: _Optional[str] = ...) -> None: ...

class SetPausedResponse(_message.Message):
    __slots__ = ("paused",)
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    def __init__(self, paused: _Optional[bool] = ...) -> None: ...

class BackfillRequest(_message.Message):
    __slots__ = ("dag_id", "start", "end", "conf_json", "requested_by")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    start: str
    end: str
    conf_json: str
    requested_by: str
    def __init__(self, dag_id: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., conf_json: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class BackfillResponse(_message.Message):
    __slots__ = ("runs", "skipped_existing")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_EXISTING_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[_common_pb2.DagRunRef]
    skipped_existing: int
    def __init__(self, runs: _Optional[_Iterable[_Union[_common_pb2.DagRunRef, _Mapping]]] = ..., skipped_existing: _Optional[int] = ...) -> None: ...

class TriggerDagRunRequest(_message.Message):
    __slots__ = ("dag_id", "conf_json", "run_id", "logical_date", "triggered_by")
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_BY_FIELD_NUMBER: _ClassVar[int]
    dag_id: str
    conf_json: str
    run_id: str
    logical_date: str
    triggered_by: str
    def __init__(self, dag_id: _Optional[str] = ..., conf_json: _Optional[str] = ..., run_id: _Optional[str] = ..., logical_date: _Optional[str] = ..., triggered_by: _Optional[str] = ...) -> None: ...

class TriggerDagRunResponse(_message.Message):
    __slots__ = ("run", "state", "logical_date")
    RUN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    run: _common_pb2.DagRunRef
    state: str
    logical_date: str
    def __init__(self, run: _Optional[_Union[_common_pb2.DagRunRef, _Mapping]] = ..., state: _Optional[str] = ..., logical_date: _Optional[str] = ...) -> None: ...

class WakeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WakeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSchedulerStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SchedulerStatus(_message.Message):
    __slots__ = ("partition", "lease_epoch", "leader", "dag_count", "import_error_count", "bundle_version")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    DAG_COUNT_FIELD_NUMBER: _ClassVar[int]
    IMPORT_ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    partition: str
    lease_epoch: int
    leader: bool
    dag_count: int
    import_error_count: int
    bundle_version: str
    def __init__(self, partition: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., leader: _Optional[bool] = ..., dag_count: _Optional[int] = ..., import_error_count: _Optional[int] = ..., bundle_version: _Optional[str] = ...) -> None: ...
