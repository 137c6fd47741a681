"""The health report, and the process-wide version and start time it shows."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

#: Version string shown in health reports; set it at start-up (e.g. a git commit).
VERSION: str = ""
#: When the process started (an aware datetime, or a POSIX timestamp); health reports
#: show the whole seconds elapsed since then.
STARTED_AT: datetime = datetime.now(UTC)

OK = "OK"
NOT_OK = "NOT OK"


@dataclass(frozen=True, slots=True)
class Health:
    """Health of a service at one moment.

    Attributes:
        uptime: whole seconds since ``STARTED_AT``.
        version: the ``VERSION`` string.
        status: ``{dependency name: "OK" | "NOT OK"}``, in the checker's order.

    Example:
        >>> h = Health(uptime=3600, version="abc123", status={"redis": "OK"})
        >>> h.healthy
        True

    .. versionadded:: 0.1.0
    """

    uptime: int
    version: str
    status: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Reports are shared between concurrent callers: make the mapping read-only.
        object.__setattr__(self, "status", MappingProxyType(dict(self.status)))

    @property
    def healthy(self) -> bool:
        """Whether every dependency is ``"OK"``."""
        return all(v == OK for v in self.status.values())


def current_version() -> str:
    """``clue.health.VERSION`` as the application last set it."""
    value = getattr(sys.modules.get("clue.health"), "VERSION", VERSION)
    return value if isinstance(value, str) else str(value)


def current_uptime() -> int:
    """Whole seconds since ``clue.health.STARTED_AT`` (0 if it is unusable)."""
    started: object = getattr(sys.modules.get("clue.health"), "STARTED_AT", STARTED_AT)
    if isinstance(started, datetime):
        # A naive start time is compared with naive local time, an aware one with UTC.
        now = datetime.now(UTC) if started.tzinfo is not None else datetime.now()
        elapsed = (now - started).total_seconds()
    elif isinstance(started, int | float) and not isinstance(started, bool):
        elapsed = time.time() - started
    else:
        return 0
    return max(0, int(elapsed)) if math.isfinite(elapsed) else 0
