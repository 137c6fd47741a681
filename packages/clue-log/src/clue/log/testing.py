"""Test helpers: capture what clue writes while keeping its processor in the chain.

structlog's ``capture_logs`` replaces the processor chain, which would hide clue's
buffering. ``capture()`` instead points clue's outputs at memory: what a test sees is
exactly what production would write.

Example:
    >>> from clue import log
    >>> from clue.log.testing import capture
    >>> with capture() as logs:
    ...     with log.context():
    ...         log.info("kept")
    ...     with log.context():
    ...         log.info("step")
    ...         log.error("boom")
    >>> logs.messages
    ['step', 'boom']

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from clue.log._config import apply, configure
from clue.log._context import current, root
from clue.log._entry import Entry
from clue.log._format import Format, format_text
from clue.log._output import fork_safe
from clue.log._render import limits
from clue.log._state import State, state

__all__ = ["CapturedLogs", "capture", "clue_logs", "reset"]


class CapturedLogs:
    """What was written while capturing: entries, and lines rendered with ``format``."""

    def __init__(self, fmt: Format) -> None:
        self.entries: list[Entry] = []
        self._fmt = fmt
        self._lock = threading.Lock()
        self.stream = io.StringIO()
        fork_safe(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def _record(self, entry: Entry) -> str | bytes:
        with self._lock:
            self.entries.append(entry)
        return self._fmt(entry)

    @property
    def lines(self) -> list[str]:
        """The rendered lines, in write order."""
        return self.stream.getvalue().splitlines()

    @property
    def messages(self) -> list[Any]:
        """The message (``MESSAGE_KEY``) of every written entry, ``None`` if it had none."""
        from clue.log import _keys

        return [dict(e.key_vals).get(_keys.MESSAGE_KEY) for e in self.entries]

    def dicts(self) -> list[dict[str, Any]]:
        """Every written entry as a dict with ``level`` and its key/values."""
        return [{"level": e.severity, **dict(e.key_vals)} for e in self.entries]

    def clear(self) -> None:
        """Forget what was captured so far."""
        with self._lock:
            self.entries.clear()
            self.stream.seek(0)
            self.stream.truncate()


@contextmanager
def capture(fmt: Format = format_text, **options: Any) -> Iterator[CapturedLogs]:
    """Capture clue's output in memory for the block, then restore the configuration.

    Args:
        fmt: the format lines are rendered with (``lines``).
        **options: other ``log.configure`` options (``debug``, ``max_buffered``...).
    """
    saved = _save()
    logs = CapturedLogs(fmt)

    def recording_format(entry: Entry) -> str | bytes:
        return logs._record(entry)

    try:
        configure(outputs=[(logs.stream, recording_format)], **options)
        yield logs
    finally:
        _restore(saved)


def reset() -> None:
    """Forget all clue configuration and process-wide bindings (for test isolation)."""
    fresh = State()
    apply({name: getattr(fresh, name) for name in State.__slots__}, 1024)
    root.bound = ()
    current.set(None)
    structlog.reset_defaults()


def _save() -> tuple[Any, ...]:
    return (
        {name: getattr(state, name) for name in type(state).__slots__},
        limits.max_size,
        root.bound,
        structlog.get_config(),
    )


def _restore(saved: tuple[Any, ...]) -> None:
    fields, max_size, bound, sl_config = saved
    apply(fields, max_size)
    root.bound = bound
    structlog.configure(**sl_config)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture
    def clue_logs() -> Iterator[CapturedLogs]:
        """Capture clue's output for one test: a pytest fixture (import it in conftest.py)."""
        with capture() as logs:
            yield logs
