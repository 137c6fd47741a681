"""The seams of the example services: their dependencies, as protocols.

Each service talks to its dependencies only through these, so its unit tests replace
them with the mocks that ``cmg gen`` generated into ``clue_example/mocks/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["GeoSource", "Location", "LocatorClient", "Weather", "WeatherSource"]


@dataclass(frozen=True)
class Location:
    """Where an IP address is."""

    ip: str
    city: str
    country: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Weather:
    """The weather at a place and hour."""

    temperature_c: float
    summary: str


class GeoSource(Protocol):
    """The locator's upstream: IP geolocation."""

    def lookup(self, ip: str) -> Location:
        """Resolve an IP address; raise on failure."""
        ...


class LocatorClient(Protocol):
    """The forecaster's view of the locator service."""

    async def locate(self, ip: str) -> Location:
        """Resolve an IP address through the locator; raise on failure."""
        ...


class WeatherSource(Protocol):
    """The forecaster's upstream: weather data."""

    async def weather(self, latitude: float, longitude: float, hour: int) -> Weather:
        """The weather at a place, ``hour`` hours from now; raise on failure."""
        ...
