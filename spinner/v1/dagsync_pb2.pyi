from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetSnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SyncNowRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("bundle_version", "path", "synced_at", "file_count", "last_error", "stale_seconds", "last_attempt_at", "source")
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SYNCED_AT_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    STALE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    bundle_version: str
    path: str
    synced_at: str
    file_count: int
    last_error: str
    stale_seconds: float
    last_attempt_at: str
    source: str
    def __init__(self, bundle_version: _Optional[str] = ..., path: _Optional[str] = ..., synced_at: _Optional[str] = ..., file_count: _Optional[int] = ..., last_error: _Optional[str] = ..., stale_seconds: _Optional[float] = ..., last_attempt_at: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...
