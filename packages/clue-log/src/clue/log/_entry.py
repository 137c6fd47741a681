"""The entry that formatters receive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class Entry:
    """A log entry as given to a format: built once, when the entry is written.

    Attributes:
        time: when the log call was made (aware, UTC).
        severity: ``"debug"``, ``"info"``, ``"warn"`` or ``"error"``.
        key_vals: ordered ``(key, value)`` pairs, the message included under
            ``MESSAGE_KEY``.
    """

    __slots__ = ("_time", "key_vals", "severity", "time_ns")

    def __init__(self, time_ns: int, severity: str, key_vals: list[tuple[str, Any]]) -> None:
        self.time_ns = time_ns
        self.severity = severity
        self.key_vals = key_vals
        self._time: datetime | None = None

    @property
    def time(self) -> datetime:
        """The call time as an aware UTC datetime."""
        if self._time is None:
            self._time = datetime.fromtimestamp(self.time_ns / 1e9, UTC)
        return self._time

    def __repr__(self) -> str:
        return (
            f"Entry(time={self.time.isoformat()}, severity={self.severity!r}, "
            f"key_vals={self.key_vals!r})"
        )
