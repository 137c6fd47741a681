"""When a request gets debug logs: the switch, the trigger header, or a trusted mark.

The decision also says which OpenTelemetry context the request runs in: the trigger
adds the ``clue.debug`` baggage mark (``propagate_trigger``), and a mark this service did
not verify is removed so it is not forwarded (see ``_mark``).
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable
from typing import Any

from clue.debug import _mark
from clue.debug._switch import DebugLogSwitch, default_switch

__all__ = ["Decision", "Trigger"]

# (debug on, the OpenTelemetry context to attach for the request or None for no change)
Decision = tuple[bool, Any]
_NO = (False, None)


class Trigger:
    """The per-request decision shared by every middleware and interceptor."""

    __slots__ = (
        "baggage",
        "forward",
        "has_baggage",
        "header",
        "mark_seconds",
        "max_mark_seconds",
        "propagate",
        "switch",
        "trust",
        "value",
    )

    def __init__(
        self,
        *,
        switch: DebugLogSwitch | None,
        trigger_header: str | None,
        trigger_value: str,
        propagate_trigger: bool = False,
        mark_seconds: float = _mark.DEFAULT_MARK_SECONDS,
        trust_baggage: bool = False,
        max_mark_seconds: float = _mark.DEFAULT_MARK_SECONDS,
        forward_baggage_mark: bool = False,
    ) -> None:
        if trigger_header is not None and not trigger_header.strip():
            msg = "trigger_header must be a non-empty header name or None"
            raise ValueError(msg)
        if trigger_header is not None and not trigger_value:
            msg = "trigger_value must be non-empty when trigger_header is set"
            raise ValueError(msg)
        if propagate_trigger and trigger_header is None:
            msg = "propagate_trigger=True needs a trigger_header"
            raise ValueError(msg)
        self.mark_seconds = _mark.check_seconds("mark_seconds", mark_seconds)
        self.max_mark_seconds = _mark.check_seconds("max_mark_seconds", max_mark_seconds)
        self.baggage = _mark.otel_baggage()
        if self.baggage is None and (propagate_trigger or trust_baggage):
            option = "propagate_trigger" if propagate_trigger else "trust_baggage"
            msg = f"{option}=True needs opentelemetry-api: pip install 'clue-debug[otel]'"
            raise ValueError(msg)
        self.has_baggage: Callable[[], bool] = (
            _mark.baggage_probe() if self.baggage is not None else _no_baggage
        )
        self.switch = switch if switch is not None else default_switch
        self.header = trigger_header.strip().lower() if trigger_header is not None else None
        self.value = trigger_value.encode("utf-8")
        self.propagate = bool(propagate_trigger)
        self.trust = bool(trust_baggage)
        self.forward = bool(forward_baggage_mark)

    def wants_debug(self, header: Callable[[str], str | bytes | None]) -> bool:
        """Whether this request runs with debug logs on; ``header(name)`` reads a header."""
        return self.decide(header)[0]

    def decide(self, header: Callable[[str], str | bytes | None]) -> Decision:
        """Debug on or off for this request, and the context to run it in."""
        # Hot path (every request): whether there is baggage at all, the switch read, one
        # header lookup.
        ctx = None
        debug = False
        baggage = self.baggage
        if baggage is not None and self.has_baggage():
            try:
                mark = baggage.get_baggage(_mark.MARK_KEY)
                if mark is not None:
                    if self.trust and _mark.mark_is_valid(mark, _mark.now(), self.max_mark_seconds):
                        debug = True  # verified: kept, so it goes on to the next service
                    elif not self.forward:
                        ctx = baggage.remove_baggage(_mark.MARK_KEY)
            except Exception:  # untrusted input and a foreign API: never raise
                ctx = None
        if self._triggered(header):
            if self.propagate and baggage is not None:
                # The request still gets its debug logs if the mark cannot be set.
                with contextlib.suppress(Exception):
                    deadline = _mark.format_mark(_mark.now() + self.mark_seconds)
                    ctx = baggage.set_baggage(_mark.MARK_KEY, deadline, context=ctx)
            return True, ctx
        if debug or self.switch.enabled():
            return True, ctx
        return (False, ctx) if ctx is not None else _NO

    def _triggered(self, header: Callable[[str], str | bytes | None]) -> bool:
        if self.header is None:
            return False
        got = header(self.header)
        if got is None:
            return False
        raw = got.encode("utf-8", "replace") if isinstance(got, str) else got
        # Constant-time: the value may be a shared secret.
        return hmac.compare_digest(raw.strip(), self.value)


def _no_baggage() -> bool:  # without opentelemetry-api there is no baggage
    return False
