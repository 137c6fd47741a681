"""Per-process state re-created in a forked child.

A process forked while another thread holds one of clue-otel's locks (gunicorn
``--preload``, ``multiprocessing`` with fork) inherits the lock held, and the child
would hang on its first use. Every object owning a lock or per-process state
registers here; in the child, right after fork, each one's ``after_fork()``
re-creates its locks and resets what belonged to the parent (the sampler's rate
estimate, the traces held for error promotion). A meter provider's aggregations start
afresh in the child too (``start_metrics_afresh_after_fork``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

__all__ = ["ForkAware", "register", "start_metrics_afresh_after_fork"]


class ForkAware(Protocol):
    """An object whose locks and per-process state are re-created after fork."""

    def after_fork(self) -> None:
        """Called in the child right after fork, with only the forking thread alive."""


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj.after_fork()`` in every child forked from now on (held weakly)."""
    _objects.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_objects):
        try:
            obj.after_fork()
        except Exception:  # noqa: S112 (a child must start whatever one object does)
            continue


os.register_at_fork(after_in_child=_after_fork_in_child)


def start_metrics_afresh_after_fork(meter_provider: SdkMeterProvider) -> None:
    """In a forked child, start ``meter_provider``'s aggregations afresh.

    The SDK re-creates the provider's locks and its reader's thread after a fork, but keeps
    what the parent had aggregated: every worker forked from a ``--preload`` parent would
    export the parent's points again, as its own (cumulative sums under its own
    ``service.instance.id``), counting them once per worker more. The child's storage
    starts empty, with new locks (another thread of the parent may have held them).
    """
    provider = weakref.ref(meter_provider)

    def after_in_child() -> None:
        alive = provider()
        if alive is not None:
            _forget_aggregations(alive)

    os.register_at_fork(after_in_child=after_in_child)


def _forget_aggregations(meter_provider: SdkMeterProvider) -> None:
    # The per-reader storage is the SDK's own (``MeasurementConsumer._reader_storages``,
    # ``MetricReaderStorage._instrument_view_instrument_matches``, stable since 1.12);
    # views are re-created lazily at the next measurement, from the instrument.
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    storages = getattr(consumer, "_reader_storages", None)
    if not isinstance(storages, dict):
        return
    for storage in storages.values():
        if isinstance(getattr(storage, "_instrument_view_instrument_matches", None), dict):
            storage._lock = threading.RLock()
            storage._instrument_view_instrument_matches = {}
