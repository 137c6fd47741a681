"""Trace metadata carried inside a message: transport-agnostic inject and extract.

A message carries its trace context in a ``map<string,string>`` field (protobuf), a
``dict[str, str]`` attribute (dataclasses and plain objects) or a ``dict`` item (dict
messages). The sender writes the current context into it through the global
OpenTelemetry propagator (W3C ``traceparent``, ``tracestate`` and ``baggage`` by
default); the receiver reads it back. What a receiver reads is untrusted input: it is
bounded and validated first, and anything malformed is ignored, never raised. A
``clue.debug`` mark is never taken from a message here: only a trusting server
interceptor may verify one (see ``_debugmark``), so ``extract`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.propagators.textmap import TextMapPropagator

from clue.interceptors import _debugmark

__all__ = [
    "DEFAULT_FIELD",
    "MAX_ENTRIES",
    "MAX_KEY_LENGTH",
    "MAX_VALUE_LENGTH",
    "extract",
    "has_trace_metadata",
    "inject",
    "read_context",
    "validate_field",
]

DEFAULT_FIELD: Final = "trace_metadata"
"""Name of the message field that carries the trace metadata by default."""

MAX_ENTRIES: Final = 32
"""A received map with more entries than this is ignored as a whole."""

MAX_KEY_LENGTH: Final = 256
"""Received keys longer than this are ignored."""

MAX_VALUE_LENGTH: Final = 8192
"""Received values longer than this are ignored (8192 is W3C baggage's own limit)."""

_TRACEPARENT: Final = "traceparent"


def inject(
    message: object,
    *,
    field: str = DEFAULT_FIELD,
    context: otel_context.Context | None = None,
) -> bool:
    """Write a trace context into the message's trace metadata field.

    The global propagator writes the context (the current one by default); keys it
    owns that the context no longer has (a stale ``baggage``, say) are removed, other
    keys of the map are left alone. Works on protobuf messages with a
    ``map<string,string>`` field, on objects and dataclasses whose attribute is a
    mutable mapping or ``None``, and on ``dict`` messages. Never raises.

    Args:
        message: the outgoing message.
        field: name of the map field.
        context: the context to write; the current context when ``None``.

    Returns:
        Whether the message now carries the context: ``False`` for a message without
        the field (it is left unchanged) or when the propagator failed (what it
        wrote before failing, such as the ``traceparent``, is kept).

    Example:
        >>> msg = {"text": "hello"}
        >>> inject(msg)
        True

    .. versionadded:: 0.1.0
    """
    target = _writable_map(message, field)
    if target is None:
        return False
    carrier: dict[str, str] = {}
    complete = True
    try:
        propagator = propagate.get_global_textmap()
        try:
            propagator.inject(carrier, context=context)
        except Exception:  # a failing propagator never breaks the send...
            # ...and what it wrote before failing is kept: each propagator owns its keys.
            complete = False
        if target:
            for key in _fields(propagator):
                if key not in carrier and key in target:
                    del target[key]
        for key, value in carrier.items():
            target[key] = value
    except Exception:  # an exotic map that refuses writes: the message goes unstamped
        return False
    return complete


def extract(
    message: object,
    *,
    field: str = DEFAULT_FIELD,
    context: otel_context.Context | None = None,
) -> otel_context.Context:
    """Read the trace context a message carries.

    The metadata is untrusted: a map with more than :data:`MAX_ENTRIES` entries is
    ignored; keys or values that are not strings or are too long are dropped; a
    malformed ``traceparent`` yields no span context. Never raises: whatever cannot be
    read leaves ``context`` as it was.

    Args:
        message: the received message.
        field: name of the map field.
        context: the base context the extracted values are added to; the current
            context when ``None``.

    Returns:
        ``context`` with the message's span context (as a non-recording parent) and
        baggage, or ``context`` unchanged when the message carries none. A
        ``clue.debug`` mark in the message is left out (``context`` keeps its own):
        nothing here verifies it, so the calls made for the message must not forward
        it.

    Example:
        >>> from opentelemetry import trace
        >>> msg = {"trace_metadata": {"traceparent": "not a traceparent"}}
        >>> trace.get_current_span(extract(msg)).get_span_context().is_valid
        False

    .. versionadded:: 0.1.0
    """
    base = otel_context.get_current() if context is None else context
    return _debugmark.keep_base_mark(read_context(message, field, base), base)


def read_context(message: object, field: str, base: otel_context.Context) -> otel_context.Context:
    """``base`` with what the message carries, its ``clue.debug`` mark included, unverified."""
    carrier = _read_map(message, field)
    if not carrier:
        return base
    try:
        return propagate.get_global_textmap().extract(carrier, context=base)
    except Exception:  # hostile metadata or a failing propagator: no context
        return base


def has_trace_metadata(message: object, field: str) -> bool:
    """Whether an outgoing message already carries a ``traceparent``."""
    try:
        current = _field_value(message, field)
        return isinstance(current, Mapping) and _TRACEPARENT in current
    except Exception:  # an exotic message type is just "not stamped"
        return False


def validate_field(field: object) -> str:
    """Check a ``field`` option at configuration time."""
    if not isinstance(field, str) or not field.isidentifier():
        raise ValueError(f"field must be a field name (an identifier), got {field!r}")
    return field


_fields_cache: tuple[TextMapPropagator, frozenset[str]] | None = None


def _fields(propagator: TextMapPropagator) -> frozenset[str]:
    # The composite propagator rebuilds its `fields` set on every access: cache it
    # for the propagator currently installed (this runs once per message sent).
    global _fields_cache  # noqa: PLW0603 - a one-entry cache of the global propagator
    cache = _fields_cache
    if cache is None or cache[0] is not propagator:
        cache = _fields_cache = (propagator, frozenset(propagator.fields))
    return cache[1]


def _read_map(message: object, field: str) -> dict[str, str] | None:
    # The received map, bounded and validated; None when absent or rejected as a whole.
    try:
        raw = _field_value(message, field)
        if not isinstance(raw, Mapping) or len(raw) > MAX_ENTRIES:
            return None
        carrier: dict[str, str] = {}
        for key, value in raw.items():
            if (
                isinstance(key, str)
                and isinstance(value, str)
                and 0 < len(key) <= MAX_KEY_LENGTH
                and len(value) <= MAX_VALUE_LENGTH
            ):
                carrier[key.lower()] = value
    except Exception:  # a hostile mapping (raising __len__, items...) is ignored
        return None
    return carrier


def _field_value(message: object, field: str) -> object:
    # Runs once per message: plain dicts skip the (slower) ABC check.
    if type(message) is dict or isinstance(message, Mapping):
        return message.get(field)
    return getattr(message, field, None)


def _writable_map(message: object, field: str) -> MutableMapping[str, str] | None:
    # The map to write into, created when the message has the field but no map yet.
    try:
        if type(message) is dict or isinstance(message, Mapping):
            current = message.get(field)
            if current is None and isinstance(message, MutableMapping):
                current = message[field] = {}
        elif hasattr(message, field):
            current = getattr(message, field)
            if current is None:
                current = {}
                setattr(message, field, current)
        else:
            return None
    except Exception:  # frozen or exotic message types cannot carry metadata
        return None
    return current if type(current) is dict or isinstance(current, MutableMapping) else None
