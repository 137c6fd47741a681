"""The fake "upstream" data service: IP geolocation and weather, served locally.

It stands for the third-party APIs the example's services depend on, so it is not
instrumented with clue. Its faults are controllable, so failures happen for real:

- IP addresses under ``--fail-prefix`` (default ``203.0.113.``, TEST-NET-3) always
  fail to resolve with 503;
- ``geo_error_rate`` / ``weather_error_rate`` make a share of calls fail with 503;
- ``delay_ms`` slows every data call down;
- ``down`` makes every endpoint, ``/livez`` included, answer 503.

Faults are set on the command line or at run time with ``POST /admin/faults`` and a JSON
body holding any of those keys; ``GET /admin/faults`` answers the current ones.

Run it with ``python -m clue_example.upstream --port 8080``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CITIES", "Faults", "UpstreamServer", "location_of", "main", "weather_at"]

# The bundled "database": an IP address resolves to one of these, by a stable hash.
CITIES: tuple[tuple[str, str, float, float], ...] = (
    ("Tokyo", "JP", 35.68, 139.69),
    ("Paris", "FR", 48.86, 2.35),
    ("Lagos", "NG", 6.52, 3.38),
    ("Lima", "PE", -12.05, -77.04),
    ("Oslo", "NO", 59.91, 10.75),
    ("Sydney", "AU", -33.87, 151.21),
    ("Toronto", "CA", 43.65, -79.38),
    ("Nairobi", "KE", -1.29, 36.82),
)
SUMMARIES = ("clear", "cloudy", "rain", "showers", "snow", "windy", "fog")


@dataclass
class Faults:
    """The faults the upstream injects; every field can be changed at run time."""

    fail_prefix: str = "203.0.113."
    geo_error_rate: float = 0.0
    weather_error_rate: float = 0.0
    delay_ms: float = 0.0
    down: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON object of changes, validating every key and value first.

        Raises:
            ValueError: naming the unknown key or the bad value; nothing is changed.
        """
        known = {f.name: f.type for f in fields(self)}
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            if key == "fail_prefix":
                if not isinstance(value, str):
                    raise ValueError("fail_prefix must be a string")
            elif key == "down":
                if not isinstance(value, bool):
                    raise ValueError("down must be a boolean")
            elif key.endswith("_rate"):
                if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be a number in [0, 1]")
            elif not isinstance(value, int | float) or not 0.0 <= value <= 60_000:
                raise ValueError(f"{key} must be a number of milliseconds in [0, 60000]")
            checked[key] = value
        for key, value in checked.items():
            setattr(self, key, value)


def location_of(ip: str) -> dict[str, Any]:
    """The bundled location of an IP address (stable: same address, same city)."""
    digest = hashlib.sha256(ip.encode()).digest()
    city, country, lat, lon = CITIES[digest[0] % len(CITIES)]
    return {"ip": ip, "city": city, "country": country, "latitude": lat, "longitude": lon}


def weather_at(lat: float, lon: float, hour: int = 0) -> dict[str, Any]:
    """A plausible, deterministic forecast for a place and an hour offset."""
    digest = hashlib.sha256(f"{lat:.2f},{lon:.2f},{hour}".encode()).digest()
    temperature = round(30.0 - abs(lat) * 0.5 + (digest[0] % 100) / 10.0 - 5.0, 1)
    return {"temperature_c": temperature, "summary": SUMMARIES[digest[1] % len(SUMMARIES)]}


class UpstreamServer(ThreadingHTTPServer):
    """A threading HTTP server holding the faults and a private random generator."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], faults: Faults, seed: int | None = None) -> None:
        super().__init__(address, _Handler)
        self.faults = faults
        self.lock = threading.Lock()
        self.random = random.Random(seed)  # not for security: fault injection only

    def roll(self, rate: float) -> bool:
        """Whether to inject a fault of the given rate into this call."""
        with self.lock:
            return self.random.random() < rate


class _Handler(BaseHTTPRequestHandler):
    server: UpstreamServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the access log: the upstream stands for a third party."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        faults = self.server.faults
        if url.path == "/admin/faults":
            self._reply(200, asdict(faults))
            return
        if faults.down:
            self._reply(503, {"error": "upstream is down"})
            return
        if url.path == "/livez":
            self._reply(200, {"status": "OK"})
            return
        if faults.delay_ms:
            time.sleep(faults.delay_ms / 1000.0)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/geo/"):
            ip = url.path.removeprefix("/geo/")
            if (
                not ip
                or ip.startswith(faults.fail_prefix)
                or self.server.roll(faults.geo_error_rate)
            ):
                self._reply(503, {"error": f"geolocation of {ip!r} failed (injected)"})
            else:
                self._reply(200, location_of(ip))
        elif url.path == "/weather":
            try:
                lat, lon = float(query["lat"]), float(query["lon"])
                hour = int(query.get("hour", "0"))
            except (KeyError, ValueError):
                self._reply(400, {"error": "lat and lon are required numbers"})
                return
            if self.server.roll(faults.weather_error_rate):
                self._reply(503, {"error": "weather unavailable (injected)"})
            else:
                self._reply(200, weather_at(lat, lon, hour))
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/admin/faults":
            self._reply(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            changes = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object")
            self.server.faults.update(changes)
        except ValueError as exc:
            self._reply(400, {"error": str(exc)})
            return
        self._reply(200, asdict(self.server.faults))

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    """Serve the upstream until interrupted."""
    parser = argparse.ArgumentParser(prog="clue_example.upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-prefix", default=Faults.fail_prefix)
    parser.add_argument("--geo-error-rate", type=float, default=0.0)
    parser.add_argument("--weather-error-rate", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    faults = Faults()
    try:
        faults.update(
            {
                "fail_prefix": args.fail_prefix,
                "geo_error_rate": args.geo_error_rate,
                "weather_error_rate": args.weather_error_rate,
                "delay_ms": args.delay_ms,
            }
        )
    except ValueError as exc:
        parser.error(str(exc))
    server = UpstreamServer(("127.0.0.1", args.port), faults, seed=args.seed)
    _stop_on_sigterm(server)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _stop_on_sigterm(server: UpstreamServer) -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    main()
