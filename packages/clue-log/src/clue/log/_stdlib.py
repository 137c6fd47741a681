"""Bridge from the standard ``logging`` module into clue's buffers."""

from __future__ import annotations

import logging
from typing import Any

from clue.log import _api, _keys
from clue.log._render import text_of


def _level(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class StdlibHandler(logging.Handler):
    """A ``logging.Handler`` feeding records into clue's current log context.

    INFO, WARNING and DEBUG records are buffered like ``log.info``/``log.warn``/
    ``log.debug``; ERROR and above flush the context like ``log.error``. The record's
    logger name is kept under ``LOGGER_KEY``.

    Example:
        >>> import logging
        >>> from clue import log
        >>> logging.getLogger("urllib3").addHandler(log.StdlibHandler())

    .. versionadded:: 0.1.0
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = _level(record.levelno)
            kv: dict[str, Any] = {_keys.LOGGER_KEY: record.name}
            # ``extra={...}`` key/values, ``err`` and ``exc_info`` included, keep their
            # meaning; the record's own attributes are not key/values.
            attrs = record.__dict__
            if len(attrs) > _PLAIN_RECORD_SIZE:
                kv.update({k: v for k, v in attrs.items() if k not in _RECORD_ATTRS})
            msg = _message(record)
            if record.exc_info:
                kv["exc_info"] = record.exc_info
            _api.BY_LEVEL[level](msg, **kv)
        except Exception:  # logging's own error reporting, never a raise
            self.handleError(record)


def _message(record: logging.LogRecord) -> str:
    # The record's message; one whose arguments do not fit it (or whose message cannot be
    # turned into text) is kept as its message followed by its arguments, as clue's own
    # functions do, so the record is written and an ERROR one still flushes.
    try:
        return record.getMessage()
    except Exception:
        args = record.args
        items: tuple[Any, ...] = args if isinstance(args, tuple) else (args,) if args else ()
        return " ".join(text_of(a) for a in (record.msg, *items))


# The attributes every LogRecord has (and those ``Formatter`` adds).
_PLAIN_RECORD = logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
_PLAIN_RECORD_SIZE = len(_PLAIN_RECORD)
_RECORD_ATTRS = frozenset({*_PLAIN_RECORD, "message", "asctime", "taskName"})


def as_std_logger(name: str | None = None) -> logging.Logger:
    """A standard ``logging.Logger`` whose records go through clue.

    Hand it to libraries that take a logger. It does not propagate to the root logger.

    Args:
        name: the logger's name; default ``"clue"``.

    Example:
        >>> from clue import log
        >>> logger = log.as_std_logger("payments")
        >>> logger.info("charging %s", "card")  # outside a log context: written at once
        time=... level=info msg="charging card" logger=payments

    .. versionadded:: 0.1.0
    """
    logger = logging.getLogger(name or "clue")
    if not any(isinstance(h, StdlibHandler) for h in logger.handlers):
        logger.addHandler(StdlibHandler())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger
