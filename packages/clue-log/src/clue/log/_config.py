"""Process-wide configuration: ``configure()``, on top of the state the hot path reads.

``configure()`` validates its options, sets the leaf ``state`` (``_state``) and the
rendering limit, then refreshes what derives from them (``apply``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, cast

import structlog

from clue.log._api import sync_switch
from clue.log._budget import set_total
from clue.log._format import Format
from clue.log._otlp import OtlpOutput
from clue.log._output import Output, Sink
from clue.log._render import limits
from clue.log._state import KeyValueFunc, state
from clue.log._structlog import CHAIN, NullLoggerFactory, bound_logger_class
from clue.log._tracing import is_tracing


def configure(
    *,
    format: Format | None = None,
    output: IO[Any] | OtlpOutput | None = None,
    outputs: Sequence[tuple[IO[Any], Format] | OtlpOutput] | None = None,
    debug: bool = False,
    disable_buffering: Callable[[], bool] | None = None,
    funcs: Iterable[KeyValueFunc] | None = None,
    file_location: bool = False,
    max_size: int = 1024,
    max_buffered: int = 1000,
    max_buffered_bytes: int = 1024 * 1024,
    max_total_buffered_bytes: int = 256 * 1024 * 1024,
) -> None:
    r"""Set up clue's logging and structlog's chain for the process.

    Args:
        format: a callable ``Entry -> str | bytes``; default the terminal format when the
            output is a TTY, logfmt text otherwise.
        output: a text or binary stream, or ``log.otlp_output()``; default ``sys.stdout``
            (looked up at write time).
        outputs: ``(stream, format)`` pairs and ``log.otlp_output()``; each entry is
            rendered once per output. Exclusive with ``output``/``format``.
        debug: write debug entries (and so disable buffering) everywhere.
        disable_buffering: predicate called on every buffered call; default
            ``log.is_tracing`` (a sampled span disables buffering).
        funcs: key/value functions called on every entry at call time, e.g. ``[log.span]``.
        file_location: add ``file=<dir>/<file>.py:<line>`` of the caller.
        max_size: longest string (characters), list and key count before truncation.
        max_buffered: most entries one log context keeps; older ones are dropped and counted.
        max_buffered_bytes: most estimated bytes one log context keeps (1 MiB); older
            entries are dropped and counted.
        max_total_buffered_bytes: most estimated bytes all open log contexts keep together
            (256 MiB); past it, the context that is appending drops its oldest entries.

    Raises:
        ValueError: an option has a bad value; the message names it.

    Example:
        >>> import io
        >>> from clue import log
        >>> out = io.StringIO()
        >>> log.configure(output=out, format=log.format_json)
        >>> log.print("hello", user="alice")
        >>> out.getvalue().endswith('"msg":"hello","user":"alice"}\n')
        True

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``max_buffered_bytes`` and ``max_total_buffered_bytes``.
    """
    sinks = _sinks(format, output, outputs)
    if not isinstance(debug, bool):
        raise ValueError(f"debug must be a bool, got {debug!r}")
    if disable_buffering is not None and not callable(disable_buffering):
        raise ValueError(f"disable_buffering must be a callable, got {disable_buffering!r}")
    fns = tuple(funcs or ())
    for fn in fns:
        if not callable(fn):
            raise ValueError(f"funcs must hold callables, got {fn!r}")
    for name, value in (
        ("max_size", max_size),
        ("max_buffered", max_buffered),
        ("max_buffered_bytes", max_buffered_bytes),
        ("max_total_buffered_bytes", max_total_buffered_bytes),
    ):
        # At most sys.maxsize: a count or size the interpreter can hold (a deque's maxlen,
        # a slice), so a context never fails to open on a bound configure() accepted.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= sys.maxsize:
            raise ValueError(
                f"{name} must be a positive int at most sys.maxsize, got {_short(value)}"
            )
    if not isinstance(file_location, bool):
        raise ValueError(f"file_location must be a bool, got {file_location!r}")

    apply(
        {
            "sinks": sinks,
            "debug": debug,
            "disable_buffering": disable_buffering or is_tracing,
            "funcs": fns,
            "file_location": file_location,
            "max_buffered": max_buffered,
            "max_buffered_bytes": max_buffered_bytes,
            "max_total_buffered_bytes": max_total_buffered_bytes,
        },
        max_size,
    )
    # Cached loggers stay correct across reconfiguration: clue's bound logger reads clue's
    # state on every call, and hands the call to structlog when CHAIN is no longer the
    # configured chain (see ``_structlog._elsewhere``).
    structlog.configure(
        processors=CHAIN,
        wrapper_class=bound_logger_class(),
        logger_factory=NullLoggerFactory(),
        cache_logger_on_first_use=True,
    )


def _short(value: object) -> str:
    """``repr(value)`` for an error message, bounded and never failing.

    It copes with an int too large to turn into text and an object whose ``__repr__`` raises.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__} that cannot be shown"
    return text if len(text) <= 80 else text[:77] + "..."


def apply(fields: Mapping[str, Any], max_size: int) -> None:
    """Set ``state``'s fields and the rendering limit, then refresh what derives from them.

    What derives from them: the hot path's switch, the budget's pool. ``configure`` and ``testing``
    change the state only through it.
    """
    for name, value in fields.items():
        setattr(state, name, value)
    limits.max_size = max_size
    set_total(state.max_total_buffered_bytes)
    sync_switch()


def _sinks(
    fmt: Format | None,
    output: IO[Any] | OtlpOutput | None,
    outputs: Sequence[tuple[IO[Any], Format] | OtlpOutput] | None,
) -> list[Output]:
    if fmt is not None and not callable(fmt):
        raise ValueError(f"format must be a callable Entry -> str | bytes, got {fmt!r}")
    if isinstance(output, OtlpOutput):
        if fmt is not None:
            raise ValueError(f"format does not apply to output=log.otlp_output(), got {fmt!r}")
        if outputs is not None:
            raise ValueError("outputs cannot be combined with output or format")
        return [output]
    if output is not None and not callable(getattr(output, "write", None)):
        raise ValueError(f"output must be a stream with a write() method, got {output!r}")
    if outputs is None:
        return [Sink(output, fmt)]
    if output is not None or fmt is not None:
        raise ValueError("outputs cannot be combined with output or format")
    given = cast(object, outputs)
    if not isinstance(given, Sequence) or isinstance(given, str | bytes):
        raise ValueError(
            "outputs must be a list of (stream, format) pairs and log.otlp_output(), "
            f"got {outputs!r}"
        )
    sinks: list[Output] = []
    for i, pair in enumerate(outputs):
        if isinstance(pair, OtlpOutput):
            sinks.append(pair)
            continue
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(
                f"outputs[{i}] must be a (stream, format) pair or log.otlp_output(), got {pair!r}"
            )
        stream, f = pair
        if isinstance(cast(object, stream), OtlpOutput):
            raise ValueError(f"outputs[{i}]: log.otlp_output() takes no format, got {f!r}")
        if not callable(getattr(stream, "write", None)):
            raise ValueError(f"outputs[{i}] stream has no write() method: {stream!r}")
        if not callable(f):
            raise ValueError(f"outputs[{i}] format is not callable: {f!r}")
        sinks.append(Sink(stream, f))
    if not sinks:
        raise ValueError("outputs must name at least one output")
    return sinks
