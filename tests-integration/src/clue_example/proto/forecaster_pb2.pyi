from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ForecastRequest(_message.Message):
    __slots__ = ("ip",)
    IP_FIELD_NUMBER: _ClassVar[int]
    ip: str
    def __init__(self, ip: _Optional[str] = ...) -> None: ...

class ForecastReply(_message.Message):
    __slots__ = ("city", "country", "temperature_c", "summary")
    CITY_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    city: str
    country: str
    temperature_c: float
    summary: str
    def __init__(self, city: _Optional[str] = ..., country: _Optional[str] = ..., temperature_c: _Optional[float] = ..., summary: _Optional[str] = ...) -> None: ...

class HourlyRequest(_message.Message):
    __slots__ = ("ip", "hour", "trace_metadata")
    class TraceMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IP_FIELD_NUMBER: _ClassVar[int]
    HOUR_FIELD_NUMBER: _ClassVar[int]
    TRACE_METADATA_FIELD_NUMBER: _ClassVar[int]
    ip: str
    hour: int
    trace_metadata: _containers.ScalarMap[str, str]
    def __init__(self, ip: _Optional[str] = ..., hour: _Optional[int] = ..., trace_metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HourlyReply(_message.Message):
    __slots__ = ("hour", "city", "temperature_c", "summary", "trace_metadata")
    class TraceMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOUR_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TRACE_METADATA_FIELD_NUMBER: _ClassVar[int]
    hour: int
    city: str
    temperature_c: float
    summary: str
    trace_metadata: _containers.ScalarMap[str, str]
    def __init__(self, hour: _Optional[int] = ..., city: _Optional[str] = ..., temperature_c: _Optional[float] = ..., summary: _Optional[str] = ..., trace_metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...
