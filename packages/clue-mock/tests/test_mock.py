"""The runtime ``Mock``: sequences, permanent implementations, errors, thread safety."""

from __future__ import annotations

import doctest
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue.mock import MissingCallsError, Mock, UnexpectedCallError


def test_sequence_is_returned_in_order_then_exhausted() -> None:
    """Sequenced functions are returned once each, in the order they were added."""
    m = Mock()
    first, second = (lambda: 1), (lambda: 2)
    m.add("get", first)
    m.add("get", second)
    assert m.has_more()
    assert m.next("get") is first
    assert m.next("get") is second
    assert not m.has_more()
    assert m.next("get") is None


def test_sequence_takes_precedence_over_permanent() -> None:
    """The sequence wins over the permanent function; once exhausted the permanent is used."""
    m = Mock()
    seq, perm = (lambda: "seq"), (lambda: "perm")
    m.set("get", perm)
    m.add("get", seq)
    assert m.next("get") is seq
    assert m.next("get") is perm
    assert m.next("get") is perm
    assert not m.has_more()


def test_set_replaces_the_permanent_function() -> None:
    """A second ``set`` replaces the first."""
    m = Mock()
    m.set("get", lambda: 1)
    m.set("get", lambda: 2)
    assert m.call("get") == 2


def test_sequence_spans_methods_in_order() -> None:
    """One sequence covers all methods: a call out of turn is not served by it."""
    m = Mock()
    m.add("open", lambda: "opened")
    m.add("close", lambda: "closed")
    assert m.next("close") is None
    assert m.call("open") == "opened"
    assert m.call("close") == "closed"


def test_call_forwards_arguments_and_returns_the_result() -> None:
    """``call`` runs the implementation with the call's arguments."""
    m = Mock()
    m.add("sum", lambda *a, **k: (a, k))
    assert m.call("sum", 1, 2, name="x") == ((1, 2), {"name": "x"})


def test_out_of_order_call_names_expected_and_actual() -> None:
    """A call out of order names the call received and the call expected next."""
    m = Mock("UsersMock")
    m.add("get", lambda key: key)
    m.add("put", lambda key: key)
    m.call("get", 1)
    with pytest.raises(UnexpectedCallError) as info:
        m.call("delete", 7, force=True)
    err = info.value
    assert isinstance(err, AssertionError)
    assert str(err) == (
        "unexpected call UsersMock.delete(7, force=True): the next expected call is "
        "UsersMock.put (sequenced call 2 of 2)"
    )
    assert (err.method, err.call_args, err.call_kwargs, err.expected) == (
        "delete",
        (7,),
        {"force": True},
        "put",
    )


def test_unexpected_call_after_exhaustion_says_so() -> None:
    """With the sequence used up and nothing set, the error says the sequence is done."""
    m = Mock("M")
    m.add("get", lambda: 1)
    m.call("get")
    with pytest.raises(UnexpectedCallError, match=r"all 1 sequenced calls were made"):
        m.call("get")


def test_unexpected_call_with_nothing_programmed() -> None:
    """A call to a method nothing was programmed for says so."""
    with pytest.raises(UnexpectedCallError, match=r"nothing was added or set for 'get'"):
        Mock("M").call("get", "k")


def test_assert_all_called_lists_missing_calls() -> None:
    """``assert_all_called`` lists every sequenced call not made, with its position."""
    m = Mock("Svc")
    for name in ("a", "b", "c"):
        m.add(name, lambda: None)
    m.call("a")
    assert m.remaining() == ["b", "c"]
    with pytest.raises(MissingCallsError) as info:
        m.assert_all_called()
    assert info.value.missing == ("b", "c")
    assert (
        str(info.value)
        == "2 sequenced calls were not made: Svc.b (call 2 of 3), Svc.c (call 3 of 3)"
    )
    m.call("b")
    m.call("c")
    m.assert_all_called()


def test_implementation_may_call_the_mock_again() -> None:
    """Implementations run outside the lock, so they can re-enter the mock."""
    m = Mock()
    m.add("outer", lambda: m.call("inner") + 1)
    m.add("inner", lambda: 41)
    assert m.call("outer") == 42


def test_concurrent_calls_consume_each_sequenced_call_once() -> None:
    """Threads racing on one mock consume every sequenced call exactly once."""
    m = Mock()
    total, threads = 4000, 8
    for i in range(total):
        m.add("get", lambda i=i: i)
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait(timeout=10)
        got = [m.call("get") for _ in range(total // threads)]
        with lock:
            results.extend(got)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    assert sorted(results) == list(range(total))
    assert not m.has_more()


def test_repr_summarises_state() -> None:
    """The repr shows the name, the calls left and the permanent names."""
    m = Mock("Svc")
    m.add("a", lambda: None)
    m.set("b", lambda: None)
    assert repr(m) == "<Mock 'Svc': 1 sequenced calls left, permanent=['b']>"


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("boom")


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(), inner, max_size=30),
    max_leaves=25,
)


@settings(max_examples=50, deadline=None)
@given(
    method=st.text(min_size=1, max_size=40),
    args=st.lists(_values, max_size=6),
    kwargs=st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), _values, max_size=6
    ),
)
def test_unexpected_call_message_is_bounded_and_never_fails(
    method: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    """Any arguments give a bounded message naming the call and its keywords."""
    with pytest.raises(UnexpectedCallError) as info:
        Mock("M").call(method, *args, **kwargs)
    message = str(info.value)
    assert message.startswith(f"unexpected call M.{method}(")
    assert len(message) <= 200 + 2 * len(method) + 220 * (len(args) + len(kwargs))
    for key in kwargs:
        assert f"{key}=" in message


@settings(max_examples=100, deadline=None)
@given(names=st.lists(st.sampled_from(["a", "b", "c"]), max_size=20))
def test_calls_in_added_order_consume_the_whole_sequence(names: list[str]) -> None:
    """Calling the names in the order they were added returns each function once."""
    m = Mock()
    for i, name in enumerate(names):
        m.add(name, lambda i=i: i)
    assert [m.call(name) for name in names] == list(range(len(names)))
    assert not m.has_more()
    m.assert_all_called()


def test_failing_repr_does_not_hide_the_unexpected_call() -> None:
    """An argument whose ``repr`` raises is shown as such; the call is still reported."""
    with pytest.raises(UnexpectedCallError) as info:
        Mock("M").call("get", _BadRepr(), [_BadRepr()], key=_BadRepr())
    message = str(info.value)
    assert message.startswith("unexpected call M.get(<_BadRepr ")
    assert message.count("_BadRepr") == 3
    assert message.endswith("nothing was added or set for 'get'")


def test_docstring_example_runs() -> None:
    """The ``Mock`` docstring example is a passing doctest."""
    from clue.mock import _mock

    result = doctest.testmod(_mock, raise_on_error=False)
    assert result.attempted >= 5
    assert result.failed == 0


def test_public_names_are_exactly_all() -> None:
    """The facade exports exactly ``__all__``, sorted, each with a docstring."""
    import types

    import clue.mock

    public = {
        name
        for name, value in vars(clue.mock).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.discard("annotations")  # from __future__ import annotations
    assert public == set(clue.mock.__all__)
    assert list(clue.mock.__all__) == sorted(clue.mock.__all__)
    assert all(getattr(clue.mock, name).__doc__ for name in clue.mock.__all__)


#: The public API, exactly: a name added to or removed from ``__all__`` is a change of the
#: public API and is made here too.
PUBLIC_API = {"GenerationError", "MissingCallsError", "Mock", "UnexpectedCallError", "generate"}


def test_all_is_exactly_the_public_api() -> None:
    """``__all__`` is exactly the public API, once each, every name resolving."""
    import clue.mock

    assert len(clue.mock.__all__) == len(set(clue.mock.__all__))
    assert set(clue.mock.__all__) == PUBLIC_API
    for name in clue.mock.__all__:
        assert hasattr(clue.mock, name), name
