"""The process-wide state every log call reads; ``configure()`` (``_config``) sets it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clue.log._output import Output, Sink
from clue.log._tracing import is_tracing

#: A key/value function: called on every entry at call time, returns pairs or a mapping.
KeyValueFunc = Callable[[], Any]


class State:
    """What every log call reads. One instance, mutated in place by ``configure``."""

    __slots__ = (
        "debug",
        "disable_buffering",
        "file_location",
        "funcs",
        "max_buffered",
        "max_buffered_bytes",
        "max_total_buffered_bytes",
        "sinks",
    )

    def __init__(self) -> None:
        self.sinks: list[Output] = [Sink(None, None)]
        self.debug = False
        self.disable_buffering: Callable[[], bool] = is_tracing
        self.funcs: tuple[KeyValueFunc, ...] = ()
        self.file_location = False
        self.max_buffered = 1000
        self.max_buffered_bytes = 1024 * 1024
        self.max_total_buffered_bytes = 256 * 1024 * 1024


state = State()
