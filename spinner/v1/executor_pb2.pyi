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
TASK_OUTCOME_UNSPECIFIED: TaskOutcome
TASK_OUTCOME_SUCCESS: TaskOutcome
TASK_OUTCOME_FAILED: TaskOutcome
TASK_OUTCOME_FAILED_NO_RETRY: TaskOutcome
TASK_OUTCOME_SKIPPED: TaskOutcome

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
    __slots__ = ("logical_date", "data_interval_start", "data_interval_end", "conf_json", "run_type")
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    DATA_INTERVAL_START_FIELD_NUMBER: _ClassVar[int]
    DATA_INTERVAL_END_FIELD_NUMBER: _ClassVar[int]
    CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_TYPE_FIELD_NUMBER: _ClassVar[int]
    logical_date: str
    data_interval_start: str
    data_interval_end: str
    conf_json: str
    run_type: str
    def __init__(self, logical_date: _Optional[str] = ..., data_interval_start: _Optional[str] = ..., data_interval_end: _Optional[str] = ..., conf_json: _Optional[str] = ..., run_type: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("key", "token", "outcome", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    token: str
    outcome: TaskOutcome
    error: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., token: _Optional[str] = ..., outcome: _Optional[_Union[TaskOutcome, str]] = ..., error: _Optional[str] = ...) -> None: ...

class RunnerFinishResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: str
    def __init__(self, state: _Optional[str] = ...) -> None: ...
