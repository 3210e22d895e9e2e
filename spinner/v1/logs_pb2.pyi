from spinner.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadLogRequest(_message.Message):
    __slots__ = ("key", "from_offset", "max_lines")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_LINES_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    from_offset: int
    max_lines: int
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., from_offset: _Optional[int] = ..., max_lines: _Optional[int] = ...) -> None: ...

class FollowLogRequest(_message.Message):
    __slots__ = ("key", "from_offset")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskTryKey
    from_offset: int
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskTryKey, _Mapping]] = ..., from_offset: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("offset", "text", "section")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    offset: int
    text: str
    section: str
    def __init__(self, offset: _Optional[int] = ..., text: _Optional[str] = ..., section: _Optional[str] = ...) -> None: ...

class ReadLogResponse(_message.Message):
    __slots__ = ("lines", "next_offset", "source", "complete", "readiness", "fallback_reason")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    READINESS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    next_offset: int
    source: str
    complete: bool
    readiness: str
    fallback_reason: str
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., next_offset: _Optional[int] = ..., source: _Optional[str] = ..., complete: _Optional[bool] = ..., readiness: _Optional[str] = ..., fallback_reason: _Optional[str] = ...) -> None: ...
