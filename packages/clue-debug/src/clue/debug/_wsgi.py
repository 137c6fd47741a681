"""``WSGIMiddleware``: applies the debug-log switch to each WSGI request."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from clue.debug._control import PrivateDebugScope
from clue.debug._mark import DEFAULT_MARK_SECONDS
from clue.debug._switch import DebugLogSwitch
from clue.debug._trigger import Trigger

__all__ = ["WSGIMiddleware"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGIMiddleware:
    """WSGI middleware: while the switch is on, each request's log context has debug on.

    The debug scope covers the application call and the iteration of its response (a
    streaming body logs with debug on too) and ends when the server closes the response.

    Args:
        app: the WSGI application to wrap.
        switch: the switch to read; the process-wide one by default.
        trigger_header: a request header that turns debug on for that request alone;
            ``None`` disables the trigger.
        trigger_value: the value the header must carry (compared in constant time).
        propagate_trigger: as for :class:`ASGIMiddleware` (the ``clue.debug`` mark).
        mark_seconds: as for :class:`ASGIMiddleware`.
        trust_baggage: as for :class:`ASGIMiddleware`.
        max_mark_seconds: as for :class:`ASGIMiddleware`.
        forward_baggage_mark: as for :class:`ASGIMiddleware`.

    Raises:
        ValueError: an option is invalid.

    Example:
        >>> import flask
        >>> from clue import debug
        >>> app = flask.Flask("svc")
        >>> app.wsgi_app = debug.WSGIMiddleware(app.wsgi_app)

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: WSGIApp,
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

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        wants_debug, ctx = self._trigger.decide(
            lambda name: environ.get("HTTP_" + name.upper().replace("-", "_"))
        )
        if not wants_debug and ctx is None:
            return self.app(environ, start_response)
        # The app, the iteration of its response and its close() run in a private copy
        # of the server's context: the server's own context never has debug on, nor the
        # request's baggage.
        scope = PrivateDebugScope(ctx, debug=wants_debug)
        try:
            result = scope.run(self.app, environ, start_response)
        except BaseException:
            scope.close()
            raise
        return _ClosingIterable(result, scope)


class _ClosingIterable:
    """The app's response; the debug scope ends when the server closes it."""

    def __init__(self, result: Iterable[bytes], scope: PrivateDebugScope) -> None:
        self._result = result
        self._scope = scope

    def __iter__(self) -> Iterator[bytes]:
        return self._scope.iterate(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                self._scope.run(close)
        finally:
            self._scope.close()
