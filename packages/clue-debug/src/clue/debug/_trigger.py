"""When a request gets debug logs: the switch is on, or it carries the trigger header."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from ._switch import DebugLogSwitch, default_switch

__all__ = ["Trigger"]


class Trigger:
    """The per-request decision shared by every middleware and interceptor."""

    __slots__ = ("header", "switch", "value")

    def __init__(
        self, *, switch: DebugLogSwitch | None, trigger_header: str | None, trigger_value: str
    ) -> None:
        if trigger_header is not None and not trigger_header.strip():
            msg = "trigger_header must be a non-empty header name or None"
            raise ValueError(msg)
        if trigger_header is not None and not trigger_value:
            msg = "trigger_value must be non-empty when trigger_header is set"
            raise ValueError(msg)
        self.switch = switch if switch is not None else default_switch
        self.header = trigger_header.strip().lower() if trigger_header is not None else None
        self.value = trigger_value.encode("utf-8")

    def wants_debug(self, header: Callable[[str], str | bytes | None]) -> bool:
        """Whether this request runs with debug logs on; ``header(name)`` reads a header."""
        # Hot path (every request): the switch read, then one header lookup at most.
        if self.switch.enabled():
            return True
        if self.header is None:
            return False
        got = header(self.header)
        if got is None:
            return False
        raw = got.encode("utf-8", "replace") if isinstance(got, str) else got
        # Constant-time: the value may be a shared secret.
        return hmac.compare_digest(raw.strip(), self.value)
