"""Unit tests of the services' handlers, their dependencies replaced by cmg's mocks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from clue import interceptors, log
from clue.log.testing import CapturedLogs, capture
from clue_example.forecaster import ForecasterService
from clue_example.interfaces import Location, Weather
from clue_example.locator import LocatorService
from clue_example.mocks.interfaces import GeoSourceMock, LocatorClientMock, WeatherSourceMock
from clue_example.proto import forecaster_pb2, locator_pb2

OSLO = Location("198.51.100.1", "Oslo", "NO", 59.91, 10.75)
RAIN = Weather(4.5, "rain")


class AbortedError(Exception):
    """What a fake servicer context raises on abort, like grpc's does."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class FakeContext:
    """A servicer context whose ``abort`` raises ``AbortedError`` (sync form)."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AbortedError(code, details)


class FakeAioContext:
    """A servicer context whose ``abort`` raises ``AbortedError`` (grpc.aio form)."""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AbortedError(code, details)


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    """Everything clue writes during the test."""
    with capture() as captured:
        yield captured


def _raise(exc: Exception) -> Any:
    def fn(*args: Any) -> Any:
        raise exc

    return fn


async def _async_value(value: Any) -> Any:
    return value


def test_locate_answers_from_the_source_and_writes_nothing(logs: CapturedLogs) -> None:
    """A successful Locate calls the source once and, untraced, writes no log line."""
    source = GeoSourceMock()
    source.add_lookup(lambda ip: OSLO if ip == OSLO.ip else _raise(AssertionError(ip))(ip))
    with log.context():
        reply = LocatorService(source).Locate(locator_pb2.LocateRequest(ip=OSLO.ip), FakeContext())
    assert reply.city == "Oslo"
    assert reply.latitude == pytest.approx(59.91)
    assert not source.has_more()
    assert logs.messages == []


def test_locate_failure_aborts_unavailable_and_writes_its_context(logs: CapturedLogs) -> None:
    """When the source fails, Locate aborts UNAVAILABLE and writes every entry it buffered."""
    source = GeoSourceMock()
    source.add_lookup(_raise(RuntimeError("upstream down")))
    with log.context(), pytest.raises(AbortedError) as aborted:
        LocatorService(source).Locate(locator_pb2.LocateRequest(ip="198.51.100.2"), FakeContext())
    assert aborted.value.code == grpc.StatusCode.UNAVAILABLE
    assert "upstream down" in aborted.value.details
    assert logs.messages == ["locating", "geolocation failed"]


def test_locate_rejects_a_non_ip_without_calling_the_source(logs: CapturedLogs) -> None:
    """A malformed address is INVALID_ARGUMENT; the source (a strict mock) is never called."""
    source = GeoSourceMock()
    with log.context(), pytest.raises(AbortedError) as aborted:
        LocatorService(source).Locate(locator_pb2.LocateRequest(ip="not-an-ip"), FakeContext())
    assert aborted.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert logs.messages == []


async def test_forecast_combines_locator_and_weather(logs: CapturedLogs) -> None:
    """Forecast locates the address, then asks the weather for that place."""
    locator, weather = LocatorClientMock(), WeatherSourceMock()
    locator.add_locate(lambda ip: _async_value(OSLO))
    weather.add_weather(
        lambda lat, lon, hour: _async_value(RAIN if (lat, lon, hour) == (59.91, 10.75, 0) else None)
    )
    with log.context():
        reply = await ForecasterService(locator, weather).Forecast(
            forecaster_pb2.ForecastRequest(ip=OSLO.ip),
            FakeAioContext(),
        )
    assert (reply.city, reply.summary, reply.temperature_c) == ("Oslo", "rain", 4.5)
    assert not locator.has_more()
    assert not weather.has_more()
    assert logs.messages == []


async def test_forecast_failure_skips_the_weather_and_writes_its_context(
    logs: CapturedLogs,
) -> None:
    """When the locator fails, Forecast aborts without asking the weather, and writes its lines."""
    locator, weather = LocatorClientMock(), WeatherSourceMock()

    async def fail(ip: str) -> Location:
        raise RuntimeError("locator unavailable")

    locator.add_locate(fail)
    with log.context(), pytest.raises(AbortedError) as aborted:
        await ForecasterService(locator, weather).Forecast(
            forecaster_pb2.ForecastRequest(ip="203.0.113.1"),
            FakeAioContext(),
        )
    assert aborted.value.code == grpc.StatusCode.UNAVAILABLE
    assert logs.messages == ["forecast requested", "forecast failed"]


async def test_hourly_handles_each_message_in_its_own_trace_context() -> None:
    """Each Hourly message is handled under the span that sent it; the location is cached."""
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    locator, weather = LocatorClientMock(), WeatherSourceMock()
    locator.add_locate(lambda ip: _async_value(OSLO))  # once: the second hour uses the cache
    seen: list[tuple[int, int]] = []

    async def observe(lat: float, lon: float, hour: int) -> Weather:
        seen.append((hour, trace.get_current_span().get_span_context().trace_id))
        return RAIN

    weather.set_weather(observe)
    senders = []
    messages = []
    for hour in range(2):
        with tracer.start_as_current_span(f"send {hour}") as span:
            senders.append(span.get_span_context().trace_id)
            msg = forecaster_pb2.HourlyRequest(ip=OSLO.ip, hour=hour)
            interceptors.inject(msg)
            messages.append(msg)

    async def stream() -> AsyncIterator[forecaster_pb2.HourlyRequest]:
        for m in messages:
            yield m

    replies = [
        r async for r in ForecasterService(locator, weather).Hourly(stream(), FakeAioContext())
    ]
    assert [r.hour for r in replies] == [0, 1]
    assert not locator.has_more()
    # The handler's spans are children of each sender's trace.
    assert [trace_id for _, trace_id in seen] == senders


def test_committed_mocks_are_what_cmg_generates() -> None:
    """The mocks in clue_example/mocks are up to date with the interfaces (cmg gen --check)."""
    import clue_example

    cmg = Path(sys.executable).with_name("cmg")
    src = Path(clue_example.__file__).parent.parent
    done = subprocess.run(
        [str(cmg), "gen", "--check", "clue_example/interfaces.py"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
