from spinner.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_OUTCOME_UNSPECIFIED: _ClassVar[TaskOutcome]
    TASK_OUTCOME_SUCCESS: _ClassVar[TaskOutcome]
    TASK_OUTCOME_FAILED: _ClassVar[TaskOutcome]
    TASK_OUTCOME_FAILED_NO_RETRY: _ClassVar[TaskOutcome]
    TASK_OUTCOME_SKIPPED: _ClassVar[TaskOutcome]
    TASK_OUTCOME_RESCHEDULE: _ClassVar[TaskOutcome]
TASK_OUTCOME_UNSPECIFIED: TaskOutcome
TASK_OUTCOME_SUCCESS: TaskOutcome
TASK_OUTCOME_FAILED: TaskOutcome
TASK_OUTCOME_FAILED_NO_RETRY: TaskOutcome
TASK_OUTCOME_SKIPPED: TaskOutcome
TASK_OUTCOME_RESCHEDULE: TaskOutcome

class RunCallbackRequest(_message.Message):
    __slots__ = ("callback_id", "partition", "lease_epoch")
    CALLBACK_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    callback_id: int
    partition: str
    lease_epoch: int
    def __init__(self, callback_id: _Optional[int] = ..., partition: _Optional[str] = ..., lease_epoch: _Optional[int] = ...) -> None: ...

class RunCallbackResponse(_message.Message):
    __slots__ = ("launched",)
    LAUNCHED_FIELD_NUMBER: _ClassVar[int]
    launched: bool
    def __init__(self, launched: _Optional[bool] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("key", "partition", "bundle_version", "relative_fileloc", "lease_epoch", "execution_timeout", "executor_config_json", "traceparent")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_FILELOC_FIELD_NUMBER: _ClassVar[int]
    LEASE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    partition: str
    bundle_version: str
    relative_fileloc: str
    lease_epoch: int
    execution_timeout: float
    executor_config_json: str
    traceparent: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., partition: _Optional[str] = ..., bundle_version: _Optional[str] = ..., relative_fileloc: _Optional[str] = ..., lease_epoch: _Optional[int] = ..., execution_timeout: _Optional[float] = ..., executor_config_json: _Optional[str] = ..., traceparent: _Optional[str] = ...) -> None: ...

class SubmitManyRequest(_message.Message):
    __slots__ = ("tries",)
    TRIES_FIELD_NUMBER: _ClassVar[int]
    tries: _containers.RepeatedCompositeFieldContainer[SubmitRequest]
    def __init__(self, tries: _Optional[_Iterable[_Union[SubmitRequest, _Mapping]]] = ...) -> None: ...

class SubmitResult(_message.Message):
    __slots__ = ("launched", "code", "error")
    LAUNCHED_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    launched: bool
    code: int
    error: str
    def __init__(self, launched: _Optional[bool] = ..., code: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class SubmitManyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResult, _Mapping]]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("launched",)
    LAUNCHED_FIELD_NUMBER: _ClassVar[int]
    launched: bool
    def __init__(self, launched: _Optional[bool] = ...) -> None: ...

class GetExecutorStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExecutorStatus(_message.Message):
    __slots__ = ("running", "backend")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    running: int
    backend: str
    def __init__(self, running: _Optional[int] = ..., backend: _Optional[str] = ...) -> None: ...

class SendNotificationRequest(_message.Message):
    __slots__ = ("key", "token", "to", "cc", "bcc", "subject", "html_content")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    CC_FIELD_NUMBER: _ClassVar[int]
    BCC_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    HTML_CONTENT_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    to: _containers.RepeatedScalarFieldContainer[str]
    cc: _containers.RepeatedScalarFieldContainer[str]
    bcc: _containers.RepeatedScalarFieldContainer[str]
    subject: str
    html_content: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., to: _Optional[_Iterable[str]] = ..., cc: _Optional[_Iterable[str]] = ..., bcc: _Optional[_Iterable[str]] = ..., subject: _Optional[str] = ..., html_content: _Optional[str] = ...) -> None: ...

class SendNotificationResponse(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class FinishCallbackRequest(_message.Message):
    __slots__ = ("key", "token", "success", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    success: bool
    error: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., success: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class FinishCallbackResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: str
    def __init__(self, state: _Optional[str] = ...) -> None: ...

class RunnerStartRequest(_message.Message):
    __slots__ = ("key", "token", "hostname", "pid")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    hostname: str
    pid: int
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class RunnerStartResponse(_message.Message):
    __slots__ = ("logical_date", "data_interval_start", "data_interval_end", "conf_json", "run_type", "prev_logical_date_success", "prev_data_interval_start_success", "prev_data_interval_end_success", "prev_start_date_success", "prev_end_date_success")
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    DATA_INTERVAL_START_FIELD_NUMBER: _ClassVar[int]
    DATA_INTERVAL_END_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREV_LOGICAL_DATE_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PREV_DATA_INTERVAL_START_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PREV_DATA_INTERVAL_END_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PREV_START_DATE_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PREV_END_DATE_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    logical_date: str
    data_interval_start: str
    data_interval_end: str
    conf_json: str
    run_type: str
    prev_logical_date_success: str
    prev_data_interval_start_success: str
    prev_data_interval_end_success: str
    prev_start_date_success: str
    prev_end_date_success: str
    def __init__(self, logical_date: _Optional[str] = ..., data_interval_start: _Optional[str] = ..., data_interval_end: _Optional[str] = ..., conf_json: _Optional[str] = ..., run_type: _Optional[str] = ..., prev_logical_date_success: _Optional[str] = ..., prev_data_interval_start_success: _Optional[str] = ..., prev_data_interval_end_success: _Optional[str] = ..., prev_start_date_success: _Optional[str] = ..., prev_end_date_success: _Optional[str] = ...) -> None: ...

class RunnerHeartbeatRequest(_message.Message):
    __slots__ = ("key", "token")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class RunnerHeartbeatResponse(_message.Message):
    __slots__ = ("keep_running",)
    KEEP_RUNNING_FIELD_NUMBER: _ClassVar[int]
    keep_running: bool
    def __init__(self, keep_running: _Optional[bool] = ...) -> None: ...

class RunnerFinishRequest(_message.Message):
    __slots__ = ("key", "token", "outcome", "error", "skip_task_ids", "reschedule_at", "hostname", "pid")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SKIP_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    RESCHEDULE_AT_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    outcome: TaskOutcome
    error: str
    skip_task_ids: _containers.RepeatedScalarFieldContainer[str]
    reschedule_at: str
    hostname: str
    pid: int
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., outcome: _Optional[_Union[TaskOutcome, str]] = ..., error: _Optional[str] = ..., skip_task_ids: _Optional[_Iterable[str]] = ..., reschedule_at: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class RunnerFinishResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: str
    def __init__(self, state: _Optional[str] = ...) -> None: ...

class RunnerSetRenderedFieldsRequest(_message.Message):
    __slots__ = ("key", "token", "fields_json")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    fields_json: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., fields_json: _Optional[str] = ...) -> None: ...

class RunnerSetRenderedFieldsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunnerPushXComRequest(_message.Message):
    __slots__ = ("key", "token", "xcom_key", "value_json")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    XCOM_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    xcom_key: str
    value_json: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., xcom_key: _Optional[str] = ..., value_json: _Optional[str] = ...) -> None: ...

class RunnerPushXComResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunnerPullXComRequest(_message.Message):
    __slots__ = ("key", "token", "dag_id", "task_ids", "xcom_key", "include_prior_dates")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    XCOM_KEY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PRIOR_DATES_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    dag_id: str
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    xcom_key: str
    include_prior_dates: bool
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., dag_id: _Optional[str] = ..., task_ids: _Optional[_Iterable[str]] = ..., xcom_key: _Optional[str] = ..., include_prior_dates: _Optional[bool] = ...) -> None: ...

class RunnerPullXComResponse(_message.Message):
    __slots__ = ("items",)
    class Item(_message.Message):
        __slots__ = ("task_id", "found", "value_json", "run_id", "map_index")
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        FOUND_FIELD_NUMBER: _ClassVar[int]
        VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
        RUN_ID_FIELD_NUMBER: _ClassVar[int]
        MAP_INDEX_FIELD_NUMBER: _ClassVar[int]
        task_id: str
        found: bool
        value_json: str
        run_id: str
        map_index: int
        def __init__(self, task_id: _Optional[str] = ..., found: _Optional[bool] = ..., value_json: _Optional[str] = ..., run_id: _Optional[str] = ..., map_index: _Optional[int] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RunnerPullXComResponse.Item]
    def __init__(self, items: _Optional[_Iterable[_Union[RunnerPullXComResponse.Item, _Mapping]]] = ...) -> None: ...

class RunnerTriggerDagRunRequest(_message.Message):
    __slots__ = ("key", "token", "trigger_dag_id", "conf_json", "logical_date", "trigger_run_id", "reset_dag_run")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_DAG_ID_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RESET_DAG_RUN_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    trigger_dag_id: str
    conf_json: str
    logical_date: str
    trigger_run_id: str
    reset_dag_run: bool
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., trigger_dag_id: _Optional[str] = ..., conf_json: _Optional[str] = ..., logical_date: _Optional[str] = ..., trigger_run_id: _Optional[str] = ..., reset_dag_run: _Optional[bool] = ...) -> None: ...

class RunnerTriggerDagRunResponse(_message.Message):
    __slots__ = ("run_id", "logical_date", "state", "created")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    logical_date: str
    state: str
    created: bool
    def __init__(self, run_id: _Optional[str] = ..., logical_date: _Optional[str] = ..., state: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class RunnerGetDagRunRequest(_message.Message):
    __slots__ = ("key", "token", "dag_id", "run_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    dag_id: str
    run_id: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., dag_id: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class RunnerGetDagRunResponse(_message.Message):
    __slots__ = ("state", "logical_date")
    STATE_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    state: str
    logical_date: str
    def __init__(self, state: _Optional[str] = ..., logical_date: _Optional[str] = ...) -> None: ...

class RunnerGetVariableRequest(_message.Message):
    __slots__ = ("key", "token", "variable_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_KEY_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    variable_key: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., variable_key: _Optional[str] = ...) -> None: ...

class RunnerGetVariableResponse(_message.Message):
    __slots__ = ("found", "value")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: str
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[str] = ...) -> None: ...

class RunnerGetConnectionRequest(_message.Message):
    __slots__ = ("key", "token", "conn_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONN_ID_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    conn_id: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., conn_id: _Optional[str] = ...) -> None: ...

class RunnerGetConnectionResponse(_message.Message):
    __slots__ = ("found", "conn_type", "host", "schema", "login", "password", "port", "extra", "description")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CONN_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    found: bool
    conn_type: str
    host: str
    schema: str
    login: str
    password: str
    port: int
    extra: str
    description: str
    def __init__(self, found: _Optional[bool] = ..., conn_type: _Optional[str] = ..., host: _Optional[str] = ..., schema: _Optional[str] = ..., login: _Optional[str] = ..., password: _Optional[str] = ..., port: _Optional[int] = ..., extra: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RunnerGetTaskStateRequest(_message.Message):
    __slots__ = ("key", "token", "dag_id", "logical_date", "task_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DAG_ID_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    dag_id: str
    logical_date: str
    task_id: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., dag_id: _Optional[str] = ..., logical_date: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class RunnerGetTaskStateResponse(_message.Message):
    __slots__ = ("found", "state", "run_id")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    found: bool
    state: str
    run_id: str
    def __init__(self, found: _Optional[bool] = ..., state: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...
