"""What a buffered call keeps of its values: mutable containers copied as at the call.

A buffered entry is written later, maybe after the application changed what it logged;
a value that can change is copied at the call, of its own type, so that it is written as
it was then, byte for byte as the same call written at once would be (cut past what
rendering writes, a set's items in its order, a container that contains itself copied
with the cycle where it was).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import MutableMapping, MutableSequence, MutableSet
from itertools import islice
from typing import Any

from clue.log._kv import KV
from clue.log._render import limits, text_of


def capture(kv: dict[str, Any]) -> dict[str, Any]:
    """The call's key/values with their mutable containers copied (``_snapshot``)."""
    return {k: _snapshot(x) for k, x in kv.items()}


# Mutable containers a buffered call copies, so that later mutation does not change what
# was logged: lists, dicts, sets and bytearrays, their subclasses, and the standard
# library's other mutable containers (``deque``, ``array``, ...).
MUTABLE_BASES = (list, dict, set, bytearray, deque, MutableSequence, MutableMapping, MutableSet)


class _InOrder(list[Any]):
    # A set's items (up to ``max_size + 1``) in the order it gave them at the call: a copy
    # of the set would iterate in another order. Written as the set is.
    __slots__ = ()


class _Text(str):
    # A set given as a ``%`` argument or as the message: the text it is written as, made
    # at the call (``str()`` of a small one shows it as a set, in its order). ``%r`` shows
    # the same.
    __slots__ = ()

    def __repr__(self) -> str:
        return str.__str__(self)


class _Cut(dict[Any, Any]):
    # The first ``max_size + 1`` items of a larger dict, copied at the call. As long as the
    # dict given: the count of keys its rendering cuts is the call's.
    __slots__ = ("total",)
    total: int

    def __len__(self) -> int:
        return self.total


def _snapshot(v: Any) -> Any:
    # A shallow copy of a mutable container, of its own type, so that it is written as at
    # the call (``%s`` shows a bytearray as one); anything else is kept as given. An exact
    # list or dict is cut past what rendering writes (its length kept); a set's items are
    # kept in its order.
    t = type(v)
    try:
        if t is list:
            return _own(v, v[: limits.max_size + 1])
        if t is dict:
            cap = limits.max_size + 1
            if len(v) <= cap:
                return _own(v, v.copy())
            cut = _Cut(islice(v.items(), cap))
            cut.total = len(v)
            return _own(v, cut)
        if isinstance(v, set):
            return _InOrder(islice(v, limits.max_size + 1))
        if t is bytearray:
            return bytearray(v)
        if isinstance(v, MUTABLE_BASES):
            return _own(v, copy.copy(v))
    except Exception:  # mutated meanwhile, or its own methods raise: kept as given
        return v
    return v


def _own(v: Any, c: Any) -> Any:
    # The copy ``c`` of ``v`` holds itself where ``v`` held itself: a container that
    # contains itself is written with the cycle marker where it reappears, as at the call.
    if isinstance(c, dict):
        if id(v) in map(id, dict.values(c)):
            for k, x in list(dict.items(c)):
                if x is v:
                    dict.__setitem__(c, k, c)
    elif isinstance(c, (list, deque)) and id(v) in map(id, c):
        for i, x in enumerate(list(c)):
            if x is v:
                c[i] = c
    return c


def snapshot_arg(a: Any) -> Any:
    """A positional argument (or the message) as at the call."""
    # A positional argument (or the message) as at the call: a ``KV``'s value and a
    # mapping's values (key/values, as ``Fields``) copied, a mutable argument copied.
    try:
        if isinstance(a, KV):
            v = _snapshot(a.v)
            return a if v is a.v else KV(a.k, v)
        if isinstance(a, dict):
            return {k: _snapshot(v) for k, v in a.items()}
        if isinstance(a, set):
            return _Text(text_of(a))
    except Exception:  # a hostile argument is kept as given
        return a
    return _snapshot(a)


def snapshot_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each positional argument as at the call (``snapshot_arg``)."""
    return tuple([snapshot_arg(a) for a in args])
