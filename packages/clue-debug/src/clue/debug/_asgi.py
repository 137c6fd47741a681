"""``ASGIMiddleware``: applies the debug-log switch to each ASGI request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._control import safe_debug_scope
from ._switch import DebugLogSwitch
from ._trigger import Trigger

__all__ = ["ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
    ) -> None:
        self.app = app
        self._trigger = Trigger(
            switch=switch, trigger_header=trigger_header, trigger_value=trigger_value
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket") or not self._wants_debug(scope):
            await self.app(scope, receive, send)
            return
        with safe_debug_scope():
            await self.app(scope, receive, send)

    def _wants_debug(self, scope: Scope) -> bool:
        def header(name: str) -> bytes | None:
            wanted = name.encode("latin-1")
            for key, value in scope.get("headers") or ():
                if bytes(key).lower() == wanted:
                    return bytes(value)
            return None

        return self._trigger.wants_debug(header)
