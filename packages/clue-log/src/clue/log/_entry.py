"""The entry that formatters receive, and how its keys are settled."""

from __future__ import annotations

import operator
from datetime import UTC, datetime, timedelta
from typing import Any

from clue.log import _keys

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Entry:
    """A log entry as given to a format: built once, when the entry is written.

    Attributes:
        time: when the log call was made (aware, UTC).
        severity: ``"debug"``, ``"info"``, ``"warn"`` or ``"error"``.
        key_vals: ordered ``(key, value)`` pairs, the message included under
            ``MESSAGE_KEY``.
    """

    __slots__ = ("_otel", "_time", "key_vals", "severity", "time_ns")

    def __init__(self, time_ns: int, severity: str, key_vals: list[tuple[str, Any]]) -> None:
        self.time_ns = time_ns
        self.severity = severity
        self.key_vals = key_vals
        self._time: datetime | None = None
        # The OpenTelemetry context current at the call (its span's ids go on OTLP records).
        self._otel: Any = None

    @property
    def time(self) -> datetime:
        """The call time as an aware UTC datetime: ``time_ns`` cut to the microsecond, as
        the formats cut it to the second (a float would round it, up to the next second)."""
        if self._time is None:
            self._time = _EPOCH + timedelta(microseconds=self.time_ns // 1000)
        return self._time

    def __repr__(self) -> str:
        return (
            f"Entry(time={self.time.isoformat()}, severity={self.severity!r}, "
            f"key_vals={self.key_vals!r})"
        )


def settle(key_vals: list[tuple[Any, Any]]) -> list[tuple[str, Any]]:
    """Give every key its written name, in place, and return the list.

    A key clue wrote itself (a ``_keys.Own``: the message, ``err``, the span ids, the
    middleware's ``http.*`` keys...) keeps its name, as do ``time`` and ``level``, which
    every format writes. An application's key whose name, less any leading underscores,
    is one of those gets one more leading underscore: ``level`` is written ``_level``,
    ``_level`` is written ``__level``, so no two keys of an entry share a written name
    through the escape; a name given twice is written once, with its last value. Runs once
    per written entry, so every format (custom ones
    included) sees the same names.
    """
    # Written for speed (it runs for every written entry): most keys of an application
    # are neither one of clue's names nor start with "_", and cost one set lookup.
    own = _keys.Own
    reserved = _keys.RESERVED
    clue: list[str] = []
    suspects: list[int] = []
    for i, (k, v) in enumerate(key_vals):
        t = type(k)
        if t is str:
            if k in reserved or k[:1] == "_":
                suspects.append(i)
        elif t is own:
            name = str.__str__(k)
            clue.append(name)
            key_vals[i] = (name, v)
        else:
            name = safe_str(k)
            key_vals[i] = (name, v)
            if name in reserved or name[:1] == "_":
                suspects.append(i)
    if suspects:
        written = {*_keys.FORMAT_KEYS, *clue}
        for i in suspects:
            k, v = key_vals[i]
            if k in written or (k[:1] == "_" and k.lstrip("_") in written):
                key_vals[i] = ("_" + k, v)
    if len(key_vals) > 1 and len(set(map(_first, key_vals))) < len(key_vals):
        _once(key_vals)
    return key_vals


_first = operator.itemgetter(0)


def _once(key_vals: list[tuple[str, Any]]) -> None:
    """A name given twice (bound again, or bound and given at the call) is written once,
    where it first appears, with its last value: what a JSON object holds, in every
    format."""
    at: dict[str, int] = {}
    out: list[tuple[str, Any]] = []
    for k, v in key_vals:
        i = at.get(k)
        if i is None:
            at[k] = len(out)
            out.append((k, v))
        else:
            out[i] = (k, v)
    key_vals[:] = out


def safe_str(v: object) -> str:
    """``str(v)``, else ``repr(v)``, else a marker naming the type: never raises."""
    try:
        s = str(v)
        if type(s) is str:
            return s
    except Exception:  # noqa: S110 - hostile __str__; fall through to repr
        pass
    try:
        s = repr(v)
        if type(s) is str:
            return s
    except Exception:  # noqa: S110 - hostile __repr__ too
        pass
    try:
        name = type(v).__name__
    except Exception:  # a metaclass whose __name__ raises
        name = "object"
    return f"<unprintable {name}>"
