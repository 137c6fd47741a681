"""What a buffered call captures: a mutable value given to it is written as it was at the
call, byte for byte as the same call written at once, whatever container holds it and
however it is given."""

from __future__ import annotations

import array
import collections
import io
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log


class ListOf(list[Any]):
    pass


class DictOf(dict[Any, Any]):
    pass


class SetOf(set[Any]):
    pass


# A fresh mutable container of ``n`` items, by kind.
KINDS: dict[str, Callable[[int], Any]] = {
    "list": lambda n: list(range(n)),
    "dict": lambda n: {f"k{i}": i for i in range(n)},
    "set": lambda n: set(range(0, 7 * n, 7)),
    "bytearray": lambda n: bytearray(b"a" * n),
    "list subclass": lambda n: ListOf(range(n)),
    "dict subclass": lambda n: DictOf({f"k{i}": i for i in range(n)}),
    "set subclass": lambda n: SetOf(range(n)),
    "OrderedDict": lambda n: collections.OrderedDict((f"k{i}", i) for i in range(n)),
    "defaultdict": lambda n: collections.defaultdict(int, {f"k{i}": i for i in range(n)}),
    "Counter": lambda n: collections.Counter({f"k{i}": i for i in range(n)}),
    "deque": lambda n: collections.deque(range(n)),
    "array": lambda n: array.array("i", range(n)),
}

# How the value reaches the call.
CARRIERS: dict[str, Callable[[Any], tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "keyword": lambda v: (("step",), {"v": v}),
    "err": lambda v: (("step",), {"err": v}),
    "% argument": lambda v: (("step %s", v), {}),
    "KV": lambda v: (("step", log.KV("v", v)), {}),
    "Fields": lambda v: (("step", log.Fields({"v": v})), {}),
    "KV message": lambda v: ((log.KV("v", v),), {}),
    "Fields message": lambda v: ((log.Fields({"v": v}),), {}),
    "message": lambda v: ((v,), {}),
}


def mutate(v: Any) -> None:
    if isinstance(v, (dict, collections.OrderedDict)):
        v.clear()
        v["changed"] = 1
    elif isinstance(v, set):
        v.clear()
        v.add(-1)
    elif isinstance(v, bytearray):
        v[:] = b"changed"
    elif isinstance(v, array.array):
        del v[:]
        v.append(-1)
    else:
        v.clear()
        v.append(-1)


def written(kind: str, carrier: str, n: int, buffered: bool) -> str:
    """The line the call writes (less its time): buffered and flushed after the value was
    mutated, or written at once."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_text, max_size=16)
    value = KINDS[kind](n)
    args, kv = CARRIERS[carrier](value)
    with log.context(disable_buffering=not buffered):
        log.info(*args, **kv)
        mutate(value)
        log.flush()
    return out.getvalue().split(" ", 1)[1]


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    carrier=st.sampled_from(sorted(CARRIERS)),
    n=st.integers(0, 40),
)
def test_a_value_mutated_after_the_call_is_written_as_at_the_call(
    kind: str, carrier: str, n: int
) -> None:
    """A list, dict, set or bytearray (a subclass of one, or another mutable container of the
    standard library), mutated after a buffered call, is written as the same call written at
    once, whether given as a keyword, ``err``, a ``%`` argument, in a ``KV`` or ``Fields`` or
    as the message: more items than ``max_size`` too."""
    assert written(kind, carrier, n, buffered=True) == written(kind, carrier, n, buffered=False)


def _self_list() -> Any:
    v: list[Any] = [1]
    v.append(v)
    v.append(v)
    return v


def _self_dict() -> Any:
    v: dict[str, Any] = {"n": 1}
    v["self"] = v
    v["again"] = v
    return v


def _self_list_subclass() -> Any:
    v = ListOf([1])
    v.append(v)
    return v


def _self_dict_subclass() -> Any:
    v = collections.OrderedDict(n=1)
    v["self"] = v
    return v


def _self_deque() -> Any:
    v: collections.deque[Any] = collections.deque([1])
    v.append(v)
    return v


SELF = {
    "list": _self_list,
    "dict": _self_dict,
    "list subclass": _self_list_subclass,
    "dict subclass": _self_dict_subclass,
    "deque": _self_deque,
}


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(SELF)), carrier=st.sampled_from(sorted(CARRIERS)))
def test_a_container_that_contains_itself_is_written_as_at_the_call(
    kind: str, carrier: str
) -> None:
    """A container that contains itself, given to a buffered call, is written as the same
    call written at once: its copy reappears where it did, as the cycle marker."""
    lines = []
    for buffered in (True, False):
        out = io.StringIO()
        log.configure(output=out, format=log.format_text)
        args, kv = CARRIERS[carrier](SELF[kind]())
        with log.context(disable_buffering=not buffered):
            log.info(*args, **kv)
            log.flush()
        lines.append(out.getvalue().split(" ", 1)[1])
    assert lines[0] == lines[1]
