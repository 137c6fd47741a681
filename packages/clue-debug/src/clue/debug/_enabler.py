"""``mount_debug_log_enabler``: the HTTP endpoint that flips the debug-log switch."""

from __future__ import annotations

from clue.debug._adapt import as_router
from clue.debug._guard import guard
from clue.debug._http import (
    AuthHook,
    Request,
    Response,
    json_response,
    seconds_param,
    text_response,
)
from clue.debug._switch import MAX_DURATION, DebugLogSwitch, default_switch

__all__ = ["mount_debug_log_enabler"]


def mount_debug_log_enabler(
    mux: object,
    *,
    path: str = "/debug",
    query: str = "debug-logs",
    on_value: str = "on",
    off_value: str = "off",
    duration: float | None = None,
    max_duration: float | None = None,
    auth: AuthHook | None = None,
    switch: DebugLogSwitch | None = None,
) -> None:
    """Mount the endpoint that shows and flips the debug-log switch.

    ``GET /debug`` answers ``{"debug-logs":"off"}``; ``?debug-logs=on`` or ``=off``
    switches and answers the new state; any other value answers 400 and changes nothing.
    ``&seconds=N`` with ``on`` switches debug logs off again by itself after N seconds
    (the answer then carries ``"remaining-seconds"``). Cross-site browser requests are
    refused (403), and ``auth``, when given, is consulted first.

    Args:
        mux: a ``Mux``, ``adapt(app)``, any ``Router``, or a Flask/Starlette/FastAPI app.
        path: where the endpoint is mounted.
        query: the query parameter (and the answer's key).
        on_value: the value that turns debug logs on.
        off_value: the value that turns them off.
        duration: default time limit in seconds for ``on`` (``None``: until turned off).
        max_duration: the longest time limit a request may ask for; with it, every ``on``
            is limited (to ``duration`` or ``max_duration``). Without it, ``seconds`` is
            still at most a day (``MAX_DURATION``); beyond the limit the answer is 400.
        auth: a hook given the ``Request``; anything but ``True`` answers 403.
        switch: the switch to drive; the process-wide one by default.

    Raises:
        ValueError: an option is invalid (empty names, equal values, bad durations).

    Example:
        >>> from clue import debug
        >>> mux = debug.Mux()
        >>> debug.mount_debug_log_enabler(mux, duration=600)

    .. versionadded:: 0.1.0
    """
    if not path.startswith("/"):
        msg = f"path must start with '/', got {path!r}"
        raise ValueError(msg)
    if not query:
        msg = "query must be a non-empty parameter name"
        raise ValueError(msg)
    if not on_value or not off_value or on_value == off_value:
        msg = (
            "on_value and off_value must be distinct and non-empty, "
            f"got {on_value!r}, {off_value!r}"
        )
        raise ValueError(msg)
    for name, value in (("duration", duration), ("max_duration", max_duration)):
        if value is not None and not (isinstance(value, int | float) and 0 < value <= MAX_DURATION):
            msg = f"{name} must be in (0, {MAX_DURATION:g}] seconds, got {value!r}"
            raise ValueError(msg)
    if duration is not None and max_duration is not None and duration > max_duration:
        msg = f"duration ({duration}) must not exceed max_duration ({max_duration})"
        raise ValueError(msg)
    target = switch if switch is not None else default_switch
    default_limit = duration if duration is not None else max_duration

    def state(status: int = 200) -> Response:
        body: dict[str, object] = {query: on_value if target.enabled() else off_value}
        left = target.remaining()
        if left is not None:
            body["remaining-seconds"] = round(left, 3)
        return json_response(status, body)

    def endpoint(request: Request) -> Response:
        value = request.query.get(query)
        if value is None or request.method == "HEAD":  # HEAD is safe: it never switches
            return state()
        if value == on_value:
            limit = _requested_limit(request, default_limit, max_duration)
            if isinstance(limit, Response):
                return limit
            target.turn_on(duration=limit, source=_source(request))
            return state()
        if value == off_value:
            target.turn_off(source=_source(request))
            return state()
        return text_response(
            400, f"unknown {query} value {value[:64]!r}; use {on_value!r} or {off_value!r}\n"
        )

    as_router(mux).handle(path, guard(endpoint, auth=auth, methods=_METHODS))


_METHODS = frozenset({"GET", "HEAD", "POST"})


def _requested_limit(
    request: Request, default: float | None, maximum: float | None
) -> float | Response | None:
    return seconds_param(request, default, MAX_DURATION if maximum is None else maximum)


def _source(request: Request) -> str:
    return f"http {request.client}" if request.client else "http"
