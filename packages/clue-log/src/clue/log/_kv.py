"""Positional key/values: ``KV`` keeps order, ``Fields`` is a mapping."""

from __future__ import annotations

from typing import Any, NamedTuple


class KV(NamedTuple):
    """One key/value pair, passed positionally to a log function.

    Example:
        >>> from clue import log
        >>> log.KV("user", "alice")
        KV(k='user', v='alice')

    .. versionadded:: 0.1.0
    """

    k: str
    v: Any


class Fields(dict[str, Any]):
    """A mapping of key/values, passed positionally to a log function.

    Example:
        >>> from clue import log
        >>> log.Fields({"user": "alice", "action": "login"})["user"]
        'alice'

    .. versionadded:: 0.1.0
    """

    __slots__ = ()
