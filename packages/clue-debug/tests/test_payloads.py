"""log_payloads: request/result logs at debug level, only while debug is on."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import debug
from clue.debug._payload import truncate


@debug.log_payloads()
def create(order: dict) -> dict:
    return {"id": 7, **order}


@debug.log_payloads(client=True, max_size=24)
async def call_remote(name: str, count: int) -> list[int]:
    return list(range(count))


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_nothing_is_logged_while_debug_is_off(logs) -> None:
    """With debug off the decorator only calls through."""
    assert create({"sku": "A1"}) == {"id": 7, "sku": "A1"}
    assert logs == []


def test_payload_and_result_are_logged_at_debug(logs, control) -> None:
    """With debug on, payload and result are logged as JSON at debug level."""
    with control.debug_scope():
        create({"sku": "A1"})
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("payload", "debug"),
        ("result", "debug"),
    ]
    assert json.loads(logs[0]["payload"]) == {"sku": "A1"}
    assert json.loads(logs[1]["result"]) == {"id": 7, "sku": "A1"}


async def test_async_client_form_uses_client_keys_and_truncates(logs, control) -> None:
    """client=True logs client-payload/client-result; long values are cut with the marker."""
    with control.debug_scope():
        assert await call_remote("x", count=50) == list(range(50))
    assert logs[0]["client-payload"] == '{"name":"x","count":50}'
    result = logs[1]["client-result"]
    assert result.endswith(debug.TRUNCATED_MARKER)
    assert result == "[0,1,2,3,4,5,6,7,8,9,10," + debug.TRUNCATED_MARKER


def test_methods_log_the_request_without_self(logs, control) -> None:
    """On a method, self is left out of the payload."""

    class Service:
        @debug.log_payloads()
        def get(self, request: str) -> str:
            return request.upper()

    with control.debug_scope():
        assert Service().get("abc") == "ABC"
    assert logs[0]["payload"] == '"abc"'


def test_hostile_values_and_formatters_never_raise(logs, control) -> None:
    """A raising __repr__ or formatter is logged as best it can be; the call still returns."""

    def bad_format(value: object) -> str:
        raise ValueError("formatter broke")

    @debug.log_payloads(format=bad_format)
    def echo(value: object) -> object:
        return value

    hostile = Hostile()
    with control.debug_scope():
        assert echo(hostile) is hostile
        assert debug.log_payloads()(lambda v: v)(hostile) is hostile
    assert "unrepresentable Hostile" in logs[0]["payload"]
    assert all("Hostile" in (e.get("payload") or e.get("result")) for e in logs)


def test_a_failing_logging_pipeline_never_reaches_the_endpoint(control) -> None:
    """A structlog processor that raises does not break the decorated call."""
    import structlog

    def explode(logger, method, event_dict):
        raise RuntimeError("processor broke")

    structlog.configure(processors=[explode])
    try:
        with control.debug_scope():
            assert create({"sku": "B2"}) == {"id": 7, "sku": "B2"}
    finally:
        structlog.reset_defaults()


def test_exceptions_from_the_endpoint_propagate(logs, control) -> None:
    """An endpoint's exception propagates; the payload was logged, no result is."""

    @debug.log_payloads()
    def fail(x: int) -> int:
        raise KeyError(x)

    with control.debug_scope(), pytest.raises(KeyError):
        fail(3)
    assert [e["event"] for e in logs] == ["payload"]


def test_dataclasses_sets_and_protobuf_serialise() -> None:
    """format_json renders dataclasses, sets and protobuf messages as JSON."""
    from google.protobuf import struct_pb2

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    message = struct_pb2.Struct()
    message.update({"user": "alice"})
    assert debug.format_json(Point(1, 2)) == '{"x":1,"y":2}'
    assert debug.format_json({3, 1}) == "[1,3]"
    assert debug.format_json(message) == '{"user":"alice"}'
    assert debug.format_json(math.nan) == "nan"


def test_pydantic_models_serialise() -> None:
    """format_json renders pydantic models through model_dump."""
    import pydantic

    class Order(pydantic.BaseModel):
        sku: str
        qty: int

    assert debug.format_json(Order(sku="A1", qty=2)) == '{"sku":"A1","qty":2}'


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10"])
def test_bad_max_size_raises(bad) -> None:
    """max_size must be a positive int, else ValueError at decoration time."""
    with pytest.raises(ValueError, match="max_size"):
        debug.log_payloads(max_size=bad)


def test_non_callable_format_raises() -> None:
    """format must be callable, else ValueError."""
    with pytest.raises(ValueError, match="format"):
        debug.log_payloads(format="json")  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_format_json_never_raises_and_is_one_json_or_repr(value) -> None:
    """Any value formats to strict JSON or to its repr, without raising."""
    text = debug.format_json(value)
    assert isinstance(text, str)
    try:
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    except json.JSONDecodeError:
        assert text == repr(value)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), max_size=st.integers(min_value=1, max_value=64))
def test_truncate_keeps_a_prefix_and_marks_cuts(text: str, max_size: int) -> None:
    """truncate keeps the first max_size characters and marks exactly the cut values."""
    out = truncate(text, max_size)
    if len(text) <= max_size:
        assert out == text
    else:
        assert out == text[:max_size] + debug.TRUNCATED_MARKER


def test_recursive_values_fall_back_to_repr() -> None:
    """A self-containing list formats through repr instead of raising."""
    loop: list[object] = [1]
    loop.append(loop)
    assert debug.format_json(loop) == "[1, [...]]"
