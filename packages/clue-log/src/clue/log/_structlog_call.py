"""A structlog call buffered by the wrapper class, replayed at flush with the call's time.

``_Call`` records the call (its arguments, bound logger, ``contextvars`` context and
time); ``replay()`` runs it through the user's whole chain in that context, with
``_CALL_TIME`` set, which ``TimeStamper`` stamps instead of the time of the flush.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import datetime
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from clue.log import _keys

#: The time of the call being replayed (set only inside a replay, in the call's copied
#: context): what ``TimeStamper`` stamps instead of the time of the flush.
_CALL_TIME: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "clue_log_call_time", default=None
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class TimeStamper(structlog.processors.TimeStamper):
    """The ``TimeStamper`` of structlog (same arguments, same output), with the call's time.

    It stamps an entry buffered by ``buffering_wrapper_class`` with the time of the call,
    not of the flush.

    Outside a replay it is structlog's own stamper.

    Example:
        >>> from clue import log
        >>> stamper = log.TimeStamper(fmt="iso", utc=True)
        >>> sorted(stamper(None, "info", {}))
        ['timestamp']

    .. versionadded:: 0.2.0
    """

    __slots__ = ()

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        ns = _CALL_TIME.get()
        if ns is None:
            return self._stamper(event_dict)
        event_dict[self.key] = _stamp(ns, self.fmt, self.utc)
        return event_dict


def _stamp(ns: int, fmt: str | None, utc: bool) -> Any:
    # What structlog's stamper writes at the instant ``ns`` (see ``_make_stamper``).
    if fmt is None:
        return ns / 1e9
    at = _EPOCH + datetime.timedelta(microseconds=ns // 1000)
    if fmt.upper() == "ISO":
        if utc:
            return at.isoformat().replace("+00:00", "Z")
        return at.astimezone().replace(tzinfo=None).isoformat()
    if utc:
        return at.strftime(fmt)
    return at.astimezone().strftime(fmt)


class _Call(tuple):  # type: ignore[type-arg]
    """A buffered structlog call, a tuple subclass: built at C speed.

    Its fields: (time_ns, bound logger, method name, event, keywords, the call's copied
    ``contextvars`` context, its estimated size, its positional arguments,
    ``(exception, traceback at the call)`` for an ``exc_info`` given as an exception, else
    None, and the bound logger's context object at the call).
    """

    __slots__ = ()

    @property
    def time_ns(self) -> int:
        return self[0]  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return self[6]  # type: ignore[no-any-return]

    def dropped_marker(self, text: str, dropped: int) -> _Call:
        """The ``warn`` entry saying how many entries before this one were dropped.

        It goes through the user's whole chain, in this call's context and at its time.
        """
        kw = {_keys.DROPPED_KEY: dropped}
        return _Call((self[0], self[1], "warning", text, kw, self[5], 0, (), None, self[9]))

    def replay(self) -> None:
        # The user's whole chain, in the call's context (``merge_contextvars``, trace ids,
        # anything read from a context variable) and with the call's time.
        with contextlib.suppress(Exception):  # a failing chain must not break the flush
            self[5].run(_replay, self)


def _replay(call: _Call) -> None:
    _CALL_TIME.set(call[0])
    logger = call[1]
    if logger._context is not call[9]:
        # The key/values as they were at the call (a copy made then): the logger's own may
        # have been changed in place since (``new()``, ``structlog.get_context()``).
        logger = copy.copy(logger)
        logger._context = call[9]
    held = call[8]
    if held is None:
        logger._clue_replay(call[2], call[3], call[7], call[4])
        return
    # An exception given as ``exc_info`` is rendered with its traceback as at the call:
    # re-raised since, it has gathered the frames it went through.
    exc, tb = held
    now = exc.__traceback__
    exc.__traceback__ = tb
    try:
        logger._clue_replay(call[2], call[3], call[7], call[4])
    finally:
        exc.__traceback__ = now
