"""Key names and the timestamp format, overridable at run time.

Code inside clue.log reads these as ``_keys.NAME`` at the moment it needs them, so
``clue.log.MESSAGE_KEY = "message"`` (forwarded here by the facade) takes effect for every
later entry.
"""

from __future__ import annotations

MESSAGE_KEY = "msg"
ERROR_MESSAGE_KEY = "err"
EXCEPTION_KEY = "exception"
TIMESTAMP_KEY = "time"
SEVERITY_KEY = "level"
TRACE_ID_KEY = "trace_id"
SPAN_ID_KEY = "span_id"
REQUEST_ID_KEY = "request_id"
SERVICE_KEY = "service"
METHOD_KEY = "method"
FILE_KEY = "file"
LOGGER_KEY = "logger"
DROPPED_KEY = "clue.dropped"
TRUNCATED_KEYS_KEY = "clue.truncated_keys"

HTTP_METHOD_KEY = "http.method"
HTTP_URL_KEY = "http.url"
HTTP_FROM_KEY = "http.remote_addr"
HTTP_STATUS_KEY = "http.status"
HTTP_DURATION_KEY = "http.time_ms"
HTTP_BYTES_KEY = "http.bytes"
HTTP_BODY_KEY = "http.body"
GRPC_SERVICE_KEY = "grpc.service"
GRPC_METHOD_KEY = "grpc.method"
GRPC_CODE_KEY = "grpc.code"
GRPC_STATUS_KEY = "grpc.status"
GRPC_DURATION_KEY = "grpc.time_ms"

#: ``time.strftime`` pattern applied to the UTC time of an entry (RFC 3339, seconds).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: Suffix of a string cut at ``max_size`` characters.
TRUNCATED_SUFFIX = " ... <clue/log.truncated>"

NAMES = tuple(
    name
    for name in dict(globals())
    if name.isupper() and not name.startswith("_") and name != "NAMES"
)
