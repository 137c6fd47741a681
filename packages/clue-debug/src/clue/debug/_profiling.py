"""``mount_pprof_handlers``: Python counterparts of Go's ``/debug/pprof/`` endpoints."""

from __future__ import annotations

import html
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

from clue.debug._adapt import as_router
from clue.debug._fork import at_fork
from clue.debug._guard import guard
from clue.debug._heap import DEFAULT_FRAMES, heap_report
from clue.debug._http import AuthHook, Request, Response, seconds_param, text_response
from clue.debug._pprof import ProfileBuilder
from clue.debug._pyspy import PySpyUnavailable, find_pyspy, record
from clue.debug._sampler import (
    Profile,
    cpu_clock_available,
    sample,
    to_collapsed,
    to_pprof,
    to_speedscope,
    walk_stack,
)
from clue.debug._stacks import dump_stacks

__all__ = ["mount_pprof_handlers"]

_PROFILE_LOCK = threading.Lock()  # one profile at a time in the process, across mounts
MAX_PROFILE_SECONDS = 3600.0  # the longest max_seconds a mount accepts


@at_fork
def _new_profile_lock() -> None:  # a forked child runs no profile of its parent's
    global _PROFILE_LOCK  # noqa: PLW0603 -- per-process state re-created after fork
    _PROFILE_LOCK = threading.Lock()


_METHODS = frozenset({"GET", "HEAD"})
_FORMATS = ("pprof", "speedscope", "collapsed")
_SAMPLERS = ("auto", "pyspy", "builtin")
_PPROF = "application/octet-stream"


def mount_pprof_handlers(
    mux: object,
    *,
    prefix: str = "/debug/pprof/",
    auth: AuthHook | None = None,
    max_seconds: float = 60.0,
    default_seconds: float | None = None,
    default_hz: int = 100,
    sampler: str = "auto",
    pyspy: str | None = None,
) -> None:
    """Mount profiling endpoints under ``prefix``.

    - ``prefix`` — an index page linking every endpoint;
    - ``profile?seconds=N`` — a sampling profile of all threads (gzipped pprof, or
      ``&format=speedscope`` / ``&format=collapsed``, weighted by ``&weight=wall`` or
      ``cpu``; ``&hz=`` sets the rate; ``&sampler=`` overrides ``sampler``). ``seconds``
      is capped at ``max_seconds``; one profile runs at a time and a concurrent request
      is answered 429 at once;
    - ``heap`` / ``allocs`` — tracemalloc profiles as pprof (``?debug=1``: text);
      tracemalloc is started on first use, and that answer says so;
    - ``goroutine`` (and its alias ``threads``) — every thread's and asyncio task's stack
      as text (``?format=pprof`` or Go's ``?debug=0``: as a pprof profile);
    - ``cmdline`` — the command line, arguments separated by NUL bytes.

    Args:
        mux: a ``Mux``, ``adapt(app)``, any ``Router``, or a Flask/Starlette/FastAPI app.
        prefix: where the endpoints live; starts and ends with ``/``.
        auth: a hook given the ``Request``; anything but ``True`` answers 403.
        max_seconds: the longest profile or allocation window.
        default_seconds: the profile length when ``seconds`` is not given; 30 (as Go's)
            or ``max_seconds`` if shorter.
        default_hz: samples per second when ``hz`` is not given (at most 1000).
        sampler: what takes CPU profiles: ``"auto"`` (py-spy when installed and
            permitted, else the in-process sampler), ``"pyspy"`` (py-spy or an error
            answer) or ``"builtin"`` (the in-process sampler).
        pyspy: the py-spy executable's absolute path; by default the ``py-spy`` on
            ``PATH`` or beside this interpreter.

    Raises:
        ValueError: an option is invalid.

    Example:
        >>> from clue import debug
        >>> mux = debug.Mux()
        >>> debug.mount_pprof_handlers(mux, max_seconds=30, default_seconds=10)
        >>> "/debug/pprof/profile" in mux.paths()
        True

    .. versionadded:: 0.1.0
    """
    if not (prefix.startswith("/") and prefix.endswith("/")):
        msg = f"prefix must start and end with '/', got {prefix!r}"
        raise ValueError(msg)
    # Comparisons alone: NaN fails them, and math.isfinite() raises on a huge int.
    if not 0 < max_seconds <= MAX_PROFILE_SECONDS:
        msg = f"max_seconds must be in (0, {MAX_PROFILE_SECONDS:g}], got {max_seconds!r}"
        raise ValueError(msg)
    if default_seconds is None:
        default_seconds = min(30.0, max_seconds)
    elif not 0 < default_seconds <= max_seconds:
        msg = f"default_seconds must be in (0, max_seconds], got {default_seconds!r}"
        raise ValueError(msg)
    if (
        isinstance(default_hz, bool)
        or not isinstance(default_hz, int)
        or not 1 <= default_hz <= 1000
    ):
        msg = f"default_hz must be an int in [1, 1000], got {default_hz!r}"
        raise ValueError(msg)
    if sampler not in _SAMPLERS:
        msg = f"sampler must be one of {', '.join(_SAMPLERS)}, got {sampler!r}"
        raise ValueError(msg)
    if pyspy is not None and not (isinstance(pyspy, str) and os.path.isabs(pyspy)):
        msg = f"pyspy must be an absolute path, got {pyspy!r}"
        raise ValueError(msg)
    router = as_router(mux)
    endpoints = _Endpoints(
        max_seconds=max_seconds,
        default_seconds=default_seconds,
        hz=default_hz,
        sampler=sampler,
        pyspy=pyspy,
    )
    routes: dict[str, tuple[Callable[[Request], Response], str]] = {
        "profile": (
            endpoints.profile,
            "sampling profile of all threads (pprof, speedscope, collapsed)",
        ),
        "heap": (endpoints.heap, "live allocations by tracemalloc (pprof; ?debug=1 for text)"),
        "allocs": (endpoints.allocs, "allocations during ?seconds=N still live at its end"),
        "goroutine": (endpoints.goroutine, "every thread's and asyncio task's stack (text)"),
        "threads": (endpoints.goroutine, "alias of goroutine"),
        "cmdline": (endpoints.cmdline, "the command line, NUL-separated"),
    }
    docs = {name: doc for name, (_, doc) in routes.items()}
    index_handler = guard(lambda _request: _index_page(prefix, docs), auth=auth, methods=_METHODS)
    router.handle(prefix, index_handler)
    router.handle(prefix.rstrip("/") or "/", index_handler)
    for name, (handler, _) in routes.items():
        router.handle(prefix + name, guard(handler, auth=auth, methods=_METHODS))


class _Endpoints:
    def __init__(
        self,
        *,
        max_seconds: float,
        default_seconds: float,
        hz: int,
        sampler: str = "auto",
        pyspy: str | None = None,
    ) -> None:
        self.max_seconds = max_seconds
        self.default_seconds = default_seconds
        self.hz = hz
        self.sampler = sampler
        self.pyspy = pyspy

    def profile(self, request: Request) -> Response:
        seconds = seconds_param(request, self.default_seconds, self.max_seconds)
        if isinstance(seconds, Response):
            return seconds
        capped = min(seconds, self.max_seconds)
        hz = _int_param(request, "hz", self.hz, 1, 1000)
        if isinstance(hz, Response):
            return hz
        fmt = request.query.get("format", "pprof")
        if fmt not in _FORMATS:
            return text_response(400, f"format must be one of {', '.join(_FORMATS)}\n")
        weight = request.query.get("weight", "wall")
        if weight not in {"wall", "cpu"}:
            return text_response(400, "weight must be wall or cpu\n")
        choice = request.query.get("sampler") or self.sampler
        if choice not in _SAMPLERS:
            return text_response(400, f"sampler must be one of {', '.join(_SAMPLERS)}\n")
        exe = find_pyspy(self.pyspy) if choice != "builtin" else None
        if choice == "pyspy" and exe is None:
            return text_response(503, "sampler=pyspy: py-spy is not installed\n")
        if exe is None and weight == "cpu" and not cpu_clock_available():
            return text_response(400, "weight=cpu needs per-thread CPU time (Linux)\n")
        if not _PROFILE_LOCK.acquire(blocking=False):
            return _busy()
        try:
            result = self._run(choice, exe, capped, hz, fmt, weight)
        finally:
            _PROFILE_LOCK.release()
        if isinstance(result, str):
            return text_response(503, f"sampler=pyspy: {result}\n")
        headers = [
            ("X-Clue-Profile-Seconds", f"{capped:g}"),
            ("X-Clue-Profile-Sampler", result.sampler),
        ]
        if result.notes and result.sampler == "builtin":
            headers.append(("X-Clue-Profile-Fallback", _header_text(result.notes[-1])))
        if fmt == "speedscope":
            body = to_speedscope(result, weight=weight).encode("utf-8")
            return Response(200, body, "application/json", tuple(headers))
        if fmt == "collapsed":
            return text_response(200, to_collapsed(result, weight=weight), headers=headers)
        headers.append(("Content-Disposition", 'attachment; filename="profile.pb.gz"'))
        return Response(200, to_pprof(result), _PPROF, tuple(headers))

    @staticmethod
    def _run(
        choice: str, exe: str | None, seconds: float, hz: int, fmt: str, weight: str
    ) -> Profile | str:
        """The profile, or (``sampler=pyspy`` only) why py-spy could not take it."""
        fallback = "py-spy is not installed" if choice == "auto" else ""
        if exe is not None:
            try:
                return record(
                    exe,
                    seconds,
                    hz=hz,
                    cpu=fmt == "pprof" or weight == "cpu",
                    wall=fmt == "pprof" or weight == "wall",
                    exclude_native=[threading.get_native_id()],
                )
            except Exception as exc:
                reason = (
                    exc.reason
                    if isinstance(exc, PySpyUnavailable)
                    else f"py-spy's output could not be read ({type(exc).__name__})"
                )
                if choice == "pyspy":
                    return reason
                fallback = reason
        result = sample(seconds, hz=hz, exclude=[threading.get_ident()])
        if fallback:
            result.notes.append(f"py-spy not used: {fallback}")
        return result

    def heap(self, request: Request) -> Response:
        return self._memory_now(request, "heap")

    def allocs(self, request: Request) -> Response:
        seconds = seconds_param(request, 0.0, self.max_seconds)
        if isinstance(seconds, Response):
            return seconds
        if seconds <= 0:
            return self._memory_now(request, "allocs")
        if not _PROFILE_LOCK.acquire(blocking=False):
            return _busy()
        try:
            return self._memory(request, "allocs", min(seconds, self.max_seconds))
        finally:
            _PROFILE_LOCK.release()

    def _memory_now(self, request: Request, kind: str) -> Response:
        """A snapshot now; with ``?stop=1``, not while an allocs window runs (it would fail)."""
        if not _stops_tracing(request):
            return self._memory(request, kind, 0.0)
        if not _PROFILE_LOCK.acquire(blocking=False):
            return _busy()
        try:
            return self._memory(request, kind, 0.0)
        finally:
            _PROFILE_LOCK.release()

    def _memory(self, request: Request, kind: str, seconds: float) -> Response:
        frames = _int_param(request, "frames", DEFAULT_FRAMES, 1, 512)
        if isinstance(frames, Response):
            return frames
        report = heap_report(kind, seconds=seconds, frames=frames)
        if _stops_tracing(request):
            tracemalloc.stop()
            report.notes.append("tracemalloc stopped after this snapshot")
        headers = [("X-Clue-Tracemalloc", "started" if report.started else "tracing")]
        if request.query.get("debug", "0") not in {"", "0"}:
            return text_response(200, report.to_text(), headers=headers)
        headers.append(("Content-Disposition", f'attachment; filename="{kind}.pb.gz"'))
        return Response(200, report.to_pprof(), _PPROF, tuple(headers))

    def goroutine(self, request: Request) -> Response:
        # Go's own convention works too: ?debug=0 asks for the binary profile.
        if request.query.get("format") == "pprof" or request.query.get("debug") == "0":
            return Response(200, _thread_profile(), _PPROF)
        return text_response(200, dump_stacks())

    def cmdline(self, _request: Request) -> Response:
        return text_response(200, "\x00".join(sys.orig_argv))


def _thread_profile() -> bytes:
    builder = ProfileBuilder([("threads", "count")], time_nanos=time.time_ns())
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        builder.add(walk_stack(frame, {}), [1], {"thread": names.get(ident, str(ident))})
    return builder.encode()


def _header_text(text: str) -> str:
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:300]


def _stops_tracing(request: Request) -> bool:
    return request.query.get("stop") in {"1", "true"}


def _busy() -> Response:
    return text_response(
        429, "another profile is running; try again when it ends\n", headers=[("Retry-After", "1")]
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int | Response:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        return text_response(400, f"{name} must be an integer in [{low}, {high}]\n")
    return value


def _index_page(prefix: str, docs: dict[str, str]) -> Response:
    tracing = "on" if tracemalloc.is_tracing() else "off (started by the first heap/allocs request)"
    rows = "".join(
        f'<tr><td><a href="{html.escape(prefix + name)}">{html.escape(name)}</a></td>'
        f"<td>{html.escape(doc)}</td></tr>\n"
        for name, doc in docs.items()
    )
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>clue-debug pprof</title>"
        "</head><body>\n<h1>Profiles</h1>\n<table>\n"
        f"{rows}</table>\n<p>CPU profile: <code>go tool pprof "
        f"http://HOST{html.escape(prefix)}profile?seconds=10</code>; one at a time.</p>\n"
        f"<p>tracemalloc: {html.escape(tracing)}</p>\n</body></html>\n"
    )
    return Response(200, page.encode("utf-8"), "text/html; charset=utf-8")
