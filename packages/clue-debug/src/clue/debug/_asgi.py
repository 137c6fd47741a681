"""``ASGIMiddleware``: applies the debug-log switch to each ASGI request."""

from __future__ import annotations

from clue.debug._control import safe_debug_scope
from clue.debug._mark import DEFAULT_MARK_SECONDS, attached
from clue.debug._switch import DebugLogSwitch
from clue.debug._trigger import Decision, Trigger
from clue.debug._types import ASGIApp, Receive, Scope, Send, header_values

__all__ = ["ASGIMiddleware"]


class ASGIMiddleware:
    """ASGI middleware: while the switch is on, each request's log context has debug on.

    The switch is read once, when the request starts: a request started while off stays
    off, and turning debug on for one request never changes another. Lifespan scopes pass
    through untouched; HTTP and websocket scopes are covered.

    Args:
        app: the ASGI application to wrap.
        switch: the switch to read; the process-wide one by default.
        trigger_header: a request header that turns debug on for that request alone
            (e.g. ``"x-clue-debug"``); ``None`` disables the trigger.
        trigger_value: the value the header must carry (compare in constant time, so a
            secret token works).
        propagate_trigger: when the trigger turns debug on, put a ``clue.debug`` mark
            valid for ``mark_seconds`` in the request's baggage, so the calls it makes
            carry it (needs opentelemetry-api, extra ``clue-debug[otel]``).
        mark_seconds: how long a mark set here stays valid (at most 3600).
        trust_baggage: turn debug on for a request whose baggage carries a well-formed
            mark expiring within ``max_mark_seconds`` (internal services only).
        max_mark_seconds: the furthest deadline a trusted mark may have (at most 3600).
        forward_baggage_mark: keep a mark this service did not verify in the baggage
            (by default it is removed, so it is not forwarded).

    Raises:
        ValueError: an option is invalid.

    Example:
        >>> from starlette.applications import Starlette
        >>> from clue import debug
        >>> app = Starlette()
        >>> app.add_middleware(debug.ASGIMiddleware, trigger_header="x-clue-debug")

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        switch: DebugLogSwitch | None = None,
        trigger_header: str | None = None,
        trigger_value: str = "on",
        propagate_trigger: bool = False,
        mark_seconds: float = DEFAULT_MARK_SECONDS,
        trust_baggage: bool = False,
        max_mark_seconds: float = DEFAULT_MARK_SECONDS,
        forward_baggage_mark: bool = False,
    ) -> None:
        self.app = app
        self._trigger = Trigger(
            switch=switch,
            trigger_header=trigger_header,
            trigger_value=trigger_value,
            propagate_trigger=propagate_trigger,
            mark_seconds=mark_seconds,
            trust_baggage=trust_baggage,
            max_mark_seconds=max_mark_seconds,
            forward_baggage_mark=forward_baggage_mark,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        wants_debug, ctx = self._decide(scope)
        if not wants_debug:
            if ctx is None:
                await self.app(scope, receive, send)
                return
            with attached(ctx):
                await self.app(scope, receive, send)
            return
        with attached(ctx), safe_debug_scope():
            await self.app(scope, receive, send)

    def _decide(self, scope: Scope) -> Decision:
        def header(name: str) -> bytes | None:
            values = header_values(scope, name.encode("latin-1"))
            return values[0] if values else None

        return self._trigger.decide(header)
