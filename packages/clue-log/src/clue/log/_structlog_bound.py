"""A structlog bound logger's key/values, looked at once per logger.

``configure()``'s bound logger keeps a logger's plain bound key/values apart from each
buffered call's keywords (in the record's ``args`` slot, merged when written): whether
they can stay apart, what they add to an entry's size estimate and the copy records hold
are decided here, at the logger's first buffered call, and cached on the logger.
"""

from __future__ import annotations

from typing import Any

from clue.log import _api, _budget


def is_plain(t: type) -> bool:
    """Whether a message of type ``t`` (not ``str``) is kept as it is.

    A class whose (metaclass's) hash raises is not.
    """
    try:
        return t in _api._PLAIN or _api._learn_plain(t, {})
    except Exception:
        return False


def bound_plain(logger: Any, bound: Any) -> tuple[Any, int, Any, Any]:
    """Whether a bound logger's key/values can stay apart from a buffered call's keywords.

    Returns ``(bound, size, keys, copy)``, cached on the logger: ``copy`` is a copy of the
    key/values, the one buffered records hold; ``size`` is what they add to an entry's
    estimate (``log.info``'s, so counted once per entry, as when they are merged), and a
    call whose keywords share a name with ``keys`` is merged at the call instead. ``keys``
    is None when a value is not plain (a mutable container, an exception) or ``exc_info``
    is bound: those calls are merged at the call and take ``log.info``'s paths. With a
    bound bool, ``keys`` holds ``exc_info`` too, which would make that bool the slow
    path's. The context of a bound logger is never changed in place by ``bind()`` or
    ``new()``; it is read again when it is replaced. One changed in place otherwise
    (through ``structlog.get_context()``) changes neither the copy nor the entries
    buffered with it: what is written is what was counted.
    """
    size = 0
    keys: Any = None
    copied: Any = None
    if type(bound) is dict and "exc_info" not in bound:
        keys = copied = dict(bound)
        try:
            for v in copied.values():
                t = type(v)
                if t in _api._FIXED_SIZE:
                    pass
                elif t is str:
                    size += len(v)
                elif t is bool:
                    keys = {**copied, "exc_info": True}
                elif t in _api._PLAIN or _api._learn_plain(t, copied):
                    size += _budget.size_of(v)
                else:
                    keys = None
                    break
        except Exception:  # a class whose (metaclass's) hash raises: merged at the call
            keys = None
    cached = (bound, size, keys, copied)
    logger._clue = cached
    return cached
