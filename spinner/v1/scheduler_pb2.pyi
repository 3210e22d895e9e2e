from spinner.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
