"""Key names and the timestamp format, overridable at run time.

Also the rule that keeps clue's own keys clue's.

Code inside clue.log reads these as ``_keys.NAME`` at the moment it needs them, so
``clue.log.MESSAGE_KEY = "message"`` (forwarded here by the facade) takes effect for every
later entry.

The key names are ``Own`` strings: a key that reaches an entry as an ``Own`` was written by
clue itself (the message, ``err``, the span ids, the middleware's ``http.*`` keys...). Any
other key is the application's; when clue wrote the same name in the entry, the
application's key is written with one more leading underscore (``_entry.settle``), so data
never forges a field clue writes.
"""

from __future__ import annotations

import re
import time

#: What a logfmt key cannot hold, and what forces a logfmt value into quotes: whitespace
#: (which in Python's regex includes every line separator str.splitlines knows), quotes,
#: '=', backslash, controls (C0, DEL, C1) and lone surrogates (not encodable in UTF-8).
LOGFMT_UNSAFE = re.compile('[\\s"=\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]')


class Own(str):
    """A key name clue writes itself; equal to (and hashed as) the plain string."""

    __slots__ = ()


MESSAGE_KEY = Own("msg")
ERROR_MESSAGE_KEY = Own("err")
EXCEPTION_KEY = Own("exception")
TIMESTAMP_KEY = Own("time")
SEVERITY_KEY = Own("level")
TRACE_ID_KEY = Own("trace_id")
SPAN_ID_KEY = Own("span_id")
REQUEST_ID_KEY = Own("request_id")
SERVICE_KEY = Own("service")
METHOD_KEY = Own("method")
FILE_KEY = Own("file")
LOGGER_KEY = Own("logger")
DROPPED_KEY = Own("clue.dropped")
TRUNCATED_KEYS_KEY = Own("clue.truncated_keys")

HTTP_METHOD_KEY = Own("http.method")
HTTP_URL_KEY = Own("http.url")
HTTP_FROM_KEY = Own("http.remote_addr")
HTTP_STATUS_KEY = Own("http.status")
HTTP_DURATION_KEY = Own("http.time_ms")
HTTP_BYTES_KEY = Own("http.bytes")
HTTP_BODY_KEY = Own("http.body")
GRPC_SERVICE_KEY = Own("grpc.service")
GRPC_METHOD_KEY = Own("grpc.method")
GRPC_CODE_KEY = Own("grpc.code")
GRPC_STATUS_KEY = Own("grpc.status")
GRPC_DURATION_KEY = Own("grpc.time_ms")

#: ``time.strftime`` pattern applied to the UTC time of an entry (RFC 3339, seconds).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: Suffix of a string cut at ``max_size`` characters.
TRUNCATED_SUFFIX = " ... <clue/log.truncated>"

NAMES = tuple(
    name
    for name in dict(globals())
    if name.isupper() and not name.startswith("_") and name not in ("NAMES", "LOGFMT_UNSAFE")
)

#: The names of every key clue writes: a key an application gives an entry is escaped
#: (``_entry.settle``) when clue wrote the same name in that entry, and sanitizing a key
#: for logfmt never turns it into one of these.
KEY_NAMES = tuple(name for name in NAMES if name.endswith("_KEY"))

RESERVED: frozenset[str] = frozenset()
#: ``TIMESTAMP_KEY`` and ``SEVERITY_KEY`` as plain strings: every format writes them.
FORMAT_KEYS: tuple[str, str] = ("", "")


def _refresh() -> None:
    global RESERVED, FORMAT_KEYS  # noqa: PLW0603 - recomputed only when a key name changes
    RESERVED = frozenset(str(globals()[name]) for name in KEY_NAMES)
    FORMAT_KEYS = (str(TIMESTAMP_KEY), str(SEVERITY_KEY))


_refresh()


def set_name(name: str, value: str) -> None:
    """Change a name at run time (``clue.log.MESSAGE_KEY = ...``): key names stay clue's.

    A ``TIMESTAMP_FORMAT`` that ``strftime`` refuses is a ``ValueError``. A key name is
    written as is in every format, so one that a logfmt key cannot hold (it would break the
    line or forge a field), one starting with ``_`` (the escape of an application's key),
    or the name of another of clue's keys (one would be dropped or repeated) is a
    ``ValueError`` and changes nothing.
    """
    if name == "TIMESTAMP_FORMAT":
        try:
            time.strftime(value, time.gmtime(0))
        except ValueError as exc:
            raise ValueError(f"TIMESTAMP_FORMAT {value!r} is refused by strftime: {exc}") from None
    if name in KEY_NAMES:
        if LOGFMT_UNSAFE.search(value):
            raise ValueError(
                f"{name} must hold no space, '=', quote, backslash or control character, "
                f"got {value!r}"
            )
        if value[:1] == "_":
            raise ValueError(f"{name} must not start with '_', kept for escaped keys: {value!r}")
        for other in KEY_NAMES:
            if other != name and str(globals()[other]) == value:
                raise ValueError(f"{name} must differ from {other}: {value!r}")
    globals()[name] = Own(value) if name in KEY_NAMES else value
    if name in KEY_NAMES:
        _refresh()
