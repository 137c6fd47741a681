"""The ``OTEL_*`` environment variables clue reads itself, read as OpenTelemetry asks.

The OpenTelemetry specification (its "Environment Variable Specification") asks that an
invalid value produce a warning and be treated as if it were not set. The SDK's own
parsing sometimes raises instead (an unknown
``OTEL_PROPAGATORS`` item at ``import opentelemetry.propagate``, a malformed
``OTEL_EXPORTER_OTLP_TIMEOUT`` or ``_COMPRESSION`` in the exporters' constructors):
clue checks those values first, warns once naming the variable and the value, and
hands the SDK the default instead. Importing this module makes a malformed
``OTEL_PROPAGATORS`` safe to import (``clue.otel`` imports it first).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import structlog
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

__all__ = [
    "batch_options",
    "chosen_protocol",
    "export_timeout_millis",
    "exporter_options",
    "known_propagators",
    "metric_interval_millis",
    "propagator_entry_points",
    "sampler_from_env",
    "signal_disabled",
    "unusable_variables",
    "warn_once",
]

_logger = structlog.get_logger("clue.otel")
_warned: set[tuple[str, ...]] = set()

_PROPAGATORS = "OTEL_PROPAGATORS"
_SAMPLER = "OTEL_TRACES_SAMPLER"
_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"
_FIXED_SAMPLERS: dict[str, Sampler] = {
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "parentbased_always_on": DEFAULT_ON,
    "parentbased_always_off": DEFAULT_OFF,
}
_RATIO_SAMPLERS: dict[str, Callable[[float], Sampler]] = {
    "traceidratio": TraceIdRatioBased,
    "parentbased_traceidratio": ParentBasedTraceIdRatio,
}
_COMPRESSIONS = ("gzip", "deflate", "none")
_PROTOCOLS = ("grpc", "http/protobuf", "http/json")
_DEFAULT_TIMEOUT_S = 10.0  # the SDK exporters' default
_DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"  # the specification's, and the SDK's
_DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
# The SDK BatchSpanProcessor's defaults (milliseconds or spans).
_BSP_QUEUE = ("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
_BSP_DELAY = ("OTEL_BSP_SCHEDULE_DELAY", 5000)
_BSP_BATCH = ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
_METRIC_INTERVAL = ("OTEL_METRIC_EXPORT_INTERVAL", 60000.0)
# The largest integer the specification asks SDKs to accept; the SDK's queue and
# timers overflow on much larger ones.
_MAX_INT = 2**31 - 1


def warn_once(event: str, variable: str, value: str, **kv: Any) -> None:
    """Log ``event`` once per process for this variable and value."""
    key = (event, variable, value, *map(str, kv.values()))
    if key not in _warned:
        _warned.add(key)
        _logger.warning(event, variable=variable, value=value, **kv)


def known_propagators(raw: str) -> bool:
    """Whether the API can build every propagator ``raw`` names (as it parses it)."""
    for item in raw.split(","):
        name = item.strip()
        if name.lower() == "none":
            return True
        if not name or not tuple(entry_points(group="opentelemetry_propagator", name=name)):
            return False
    return True


def propagator_entry_points(raw: str) -> list[EntryPoint] | None:
    """The propagators ``raw`` names, matched case-insensitively; None if one is unknown.

    The specification reads enum values case-insensitively (``TraceContext,Baggage``);
    the API matches the entry points' names exactly. ``none`` ends the list, as in
    the API. An empty item makes the whole setting invalid.
    """
    points = {p.name.lower(): p for p in entry_points(group="opentelemetry_propagator")}
    found: list[EntryPoint] = []
    for item in raw.split(","):
        name = item.strip().lower()
        if name == "none":
            break
        if name not in points:
            return None
        found.append(points[name])
    return found


def sampler_from_env() -> Sampler | None:
    """The sampler ``OTEL_TRACES_SAMPLER`` names, or None (unset or invalid: clue's own)."""
    raw = os.environ.get(_SAMPLER, "").strip()
    if not raw:
        return None
    name = raw.lower()
    if name in _FIXED_SAMPLERS:
        return _FIXED_SAMPLERS[name]
    if name in _RATIO_SAMPLERS:
        arg = os.environ.get(_SAMPLER_ARG, "")
        try:
            ratio = float(arg)
            valid = 0.0 <= ratio <= 1.0
        except ValueError:
            valid = not arg.strip()  # unset or blank: the specification's default, 1.0
            ratio = 1.0
        if not valid:
            warn_once("otel.env.invalid", _SAMPLER_ARG, arg, using="1.0")
            ratio = 1.0
        return _RATIO_SAMPLERS[name](ratio)
    warn_once("otel.env.invalid", _SAMPLER, raw, using="clue's adaptive sampler")
    return None


def signal_disabled(variable: str) -> bool:
    """Whether ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` is ``none``; other choices are reported.

    clue uses the exporter given in code; a variable naming another exporter is
    ignored, and said so once.
    """
    raw = os.environ.get(variable, "").strip()
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if names == ["none"]:
        return True
    if names and names != ["otlp"]:
        warn_once(
            "otel.env.ignored",
            variable,
            raw,
            note="clue exports through the exporter given to new_config",
        )
    return False


def batch_options(
    variables: tuple[tuple[str, int], tuple[str, int], tuple[str, int]] | None = None,
) -> tuple[int, int, int]:
    """A batch processor's queue size, schedule delay and batch size from the environment.

    ``variables`` names the queue size, schedule delay and batch size variables with
    their defaults: ``OTEL_BSP_*`` (the ``BatchSpanProcessor``'s) when None, the
    ``OTEL_BLRP_*`` ones for the ``BatchLogRecordProcessor``. The SDK raises
    ``ValueError`` from its constructors on a value it parses but rejects (a queue of
    0, a delay of 0 or less, a batch larger than the queue): clue reads them itself,
    and a malformed or out-of-range value is warned and replaced by the default (the
    batch size is also capped by the queue size).
    """
    queue_var, delay_var, batch_var = variables or (_BSP_QUEUE, _BSP_DELAY, _BSP_BATCH)
    queue = _positive_int(*queue_var)
    delay = _positive_int(*delay_var)
    variable, default = batch_var
    batch = _positive_int(variable, default)
    if batch > queue:
        if variable in os.environ:
            warn_once(
                "otel.env.invalid",
                variable,
                os.environ[variable],
                using=str(min(default, queue)),
                note=f"larger than the queue size {queue}",
            )
        batch = min(default, queue)
    return queue, delay, batch


def export_timeout_millis(variable: str) -> int:
    """A batch processor's export timeout (``OTEL_BSP_`` / ``OTEL_BLRP_EXPORT_TIMEOUT``).

    The SDK's processors read it themselves and log a malformed value as an error (to
    the error handler), taking a negative one as given: clue reads it as the other batch
    settings, a whole number of milliseconds from 0 to 2**31 - 1, else warned and the
    default, 30 000.
    """
    default = 30000
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= _MAX_INT:
        warn_once("otel.env.invalid", variable, raw, using=str(default))
        return default
    return value


def metric_interval_millis() -> float:
    """``OTEL_METRIC_EXPORT_INTERVAL``, or 60 000 when unset, malformed or out of range.

    In range: positive, at most 2**31 - 1 ms (the timer overflows on larger ones).
    """
    variable, default = _METRIC_INTERVAL
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= _MAX_INT:
        warn_once("otel.env.invalid", variable, raw, using=f"{default:.0f}")
        return default
    return value


def exporter_options(signal: str, transport: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus defaults replacing malformed OTLP variables the SDK would raise on.

    Args:
        signal: ``"traces"``, ``"metrics"`` or ``"logs"``.
        transport: ``"grpc"`` or ``"http/protobuf"``: the helper's protocol.
        options: The keyword options the user gave (they win over the environment).
    """
    out = dict(options)
    names = [f"OTEL_EXPORTER_OTLP_{signal.upper()}_{{}}", "OTEL_EXPORTER_OTLP_{}"]
    if "timeout" not in options:
        timeout = _first_valid([n.format("TIMEOUT") for n in names], _valid_timeout, "10")
        if timeout is not None:
            out["timeout"] = float(timeout)
    if "compression" not in options:
        variables = [n.format("COMPRESSION") for n in names]
        compression = _first_valid(variables, _valid_compression, "none")
        if compression is None:
            # Valid values are handed over too: the SDK's gRPC exporters raise on
            # "none" and "deflate", which the specification and its HTTP ones accept.
            compression = next(
                (os.environ[v] for v in variables if os.environ.get(v, "").strip()), None
            )
        if compression is not None:
            out["compression"] = _compression(transport, compression.strip().lower())
    if "endpoint" not in options:
        endpoint = _endpoint_from_env(signal, transport, [n.format("ENDPOINT") for n in names])
        if endpoint is not None:
            out["endpoint"] = endpoint
    if transport == "grpc" and "insecure" not in options:
        # The specification: ``OTEL_EXPORTER_OTLP_[SIGNAL_]INSECURE`` only applies to an
        # endpoint without a scheme; ``http://`` is plaintext whatever it says (the SDK
        # lets the variable win, and speaks TLS to a plaintext collector).
        target = out.get("endpoint") or _endpoint_from_env(
            signal, transport, [n.format("ENDPOINT") for n in names], always=True
        )
        if isinstance(target, str) and target.lower().startswith("http://"):
            out["insecure"] = True
    for variable in (n.format("PROTOCOL") for n in names):
        raw = os.environ.get(variable, "").strip()
        if not raw:
            continue
        if raw.lower() not in _PROTOCOLS:
            warn_once("otel.env.invalid", variable, raw, using="http/protobuf")
        elif raw.lower() != transport:
            warn_once(
                "otel.env.ignored",
                variable,
                raw,
                note=f"this helper exports over {transport}; new_otlp_* helpers follow it",
            )
        break
    return out


def unusable_variables(signal: str) -> frozenset[str]:
    """The per-signal ``OTEL_EXPORTER_OTLP_*`` variables the SDK must not read itself.

    The SDK's gRPC exporters parse ``OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`` and
    ``_COMPRESSION`` even when the option is given, and raise on a blank or malformed
    value; :func:`exporter_options` has already given the value to use instead.
    """
    hidden = set()
    checks = (("TIMEOUT", _valid_timeout), ("COMPRESSION", _valid_compression))
    for suffix, valid in checks:
        variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"
        raw = os.environ.get(variable)
        if raw is not None and (not raw.strip() or not valid(raw)):
            hidden.add(variable)
    return frozenset(hidden)


def chosen_protocol(signal: str) -> str:
    """The OTLP transport the environment chooses for ``signal``: ``grpc`` or ``http/protobuf``.

    ``OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else
    ``http/protobuf`` (the specification's default). ``http/json``, which the Python
    SDK has no exporter for, and unknown values are warned and give ``http/protobuf``.
    """
    for variable in (
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ):
        raw = os.environ.get(variable, "").strip()
        if not raw:
            continue
        name = raw.lower()  # enum values are case-insensitive
        if name in ("grpc", "http/protobuf"):
            return name
        event = "otel.env.unsupported" if name == "http/json" else "otel.env.invalid"
        warn_once(event, variable, raw, using="http/protobuf")
        return "http/protobuf"
    return "http/protobuf"


def _endpoint_from_env(
    signal: str, transport: str, variables: list[str], *, always: bool = False
) -> str | None:
    # The endpoint ``OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT`` (used as is) or
    # ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL: HTTP appends ``/v1/{signal}``) name,
    # read as the specification asks: a blank one is unset, surrounding whitespace is
    # not part of it. None when the SDK reads them the same way itself (unless
    # ``always``). The SDK takes a blank or padded value as the URL.
    own, general = (os.environ.get(v) for v in variables)
    if own is not None and own.strip():
        return own.strip() if always or own != own.strip() else None
    if general is not None and general.strip():
        if not always and own is None and general == general.strip():
            return None
        base = general.strip()
        return base if transport == "grpc" else f"{base.removesuffix('/')}/v1/{signal}"
    if not always and own is None and general is None:
        return None
    if transport == "grpc":
        return _DEFAULT_GRPC_ENDPOINT
    return f"{_DEFAULT_HTTP_ENDPOINT}/v1/{signal}"


def _first_valid(variables: list[str], valid: Any, default: str) -> str | None:
    # The value the SDK should be given when one of ``variables`` is blank or malformed
    # (else None: the SDK reads them itself). The specification treats a blank
    # variable as unset, while the SDK takes it as set and raises on it; a malformed
    # one is treated as unset too, with a warning.
    replace = False
    for variable in variables:
        raw = os.environ.get(variable)
        if raw is None:
            continue
        if not raw.strip():
            replace = True
            continue
        if valid(raw):
            return raw if replace else None
        replace = True
        warn_once("otel.env.invalid", variable, raw, using="the next setting or the default")
    return default if replace else None


def _positive_int(variable: str, default: int) -> int:
    # A positive integer from ``variable``, at most 2**31 - 1; unset or blank: the
    # default, silently; malformed or out of range: the default, warned.
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 0 < value <= _MAX_INT:
        warn_once("otel.env.invalid", variable, raw, using=str(default))
        return default
    return value


def _valid_timeout(raw: str) -> bool:
    try:
        value = float(raw)
    except ValueError:
        return False
    return math.isfinite(value) and value >= 0


def _valid_compression(raw: str) -> bool:
    return raw.strip().lower() in _COMPRESSIONS


def _compression(transport: str, name: str) -> Any:
    if transport == "grpc":
        import grpc

        return {
            "gzip": grpc.Compression.Gzip,
            "deflate": grpc.Compression.Deflate,
            "none": grpc.Compression.NoCompression,
        }[name]
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "gzip": Compression.Gzip,
        "deflate": Compression.Deflate,
        "none": Compression.NoCompression,
    }[name]


def _guard_propagators_import() -> None:
    # The API builds its propagators from OTEL_PROPAGATORS when opentelemetry.propagate
    # is first imported, and raises on an unknown name: import it with the variable
    # unset instead (the default), after saying so.
    raw = os.environ.get(_PROPAGATORS)
    if raw is None or "opentelemetry.propagate" in sys.modules or known_propagators(raw):
        return
    if propagator_entry_points(raw) is None:  # else only its case differs: clue honours it
        warn_once("otel.env.invalid", _PROPAGATORS, raw, using="tracecontext,baggage")
    del os.environ[_PROPAGATORS]
    try:
        import opentelemetry.propagate  # noqa: F401 (imported for its import-time set-up)
    finally:
        os.environ[_PROPAGATORS] = raw


_guard_propagators_import()
