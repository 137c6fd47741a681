"""Outputs: multiple outputs, binary and text streams, failures never raise."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from clue import log
from clue.log import _output


class Broken(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError("closed pipe")


class CountingBytes(io.BytesIO):
    writes = 0

    def write(self, b: Any) -> int:
        self.writes += 1
        return super().write(b)


def test_failing_output_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    """A closed pipe is counted and reported on stderr at most once per interval."""
    _output.failures._last_report = -1e9
    before = _output.failures.total
    log.configure(output=Broken(), format=log.format_text)
    for _ in range(5):
        log.print("lost")
        with log.context():
            log.info("x")
            log.error("y")
    assert _output.failures.total - before == 15  # print, the flush and the error, 5 times
    err = capsys.readouterr().err
    assert err.count("clue/log:") <= 1


def test_multiple_outputs_each_rendered_once() -> None:
    """Each entry is rendered once per output, in that output's format."""
    text, js = io.StringIO(), io.BytesIO()
    log.configure(outputs=[(text, log.format_text), (js, log.format_json)])
    log.print("hello", n=1)
    assert text.getvalue().endswith("msg=hello n=1\n")
    assert json.loads(js.getvalue())["n"] == 1


def test_one_write_per_flush() -> None:
    """Flushing ten buffered entries performs one write() on the output."""
    stream = CountingBytes()
    log.configure(output=stream, format=log.format_json)
    with log.context():
        for i in range(10):
            log.info("e", i=i)
        log.flush()
    assert stream.writes == 1
    assert len(stream.getvalue().splitlines()) == 10


def test_custom_format_callable() -> None:
    """Any callable Entry -> str | bytes is a format."""
    stream = io.StringIO()
    log.configure(output=stream, format=lambda e: f"[{e.severity}] {e.key_vals}\n")
    log.print("x")
    assert stream.getvalue() == "[info] [('msg', 'x')]\n"


def test_raising_custom_format_never_raises() -> None:
    """A custom format that raises writes a marker line instead."""
    stream = io.StringIO()

    def bad(entry: log.Entry) -> str:
        raise ValueError("format bug")

    log.configure(output=stream, format=bad)
    log.print("x")
    assert "format bad failed: ValueError" in stream.getvalue()


def test_default_output_is_current_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Unconfigured, clue writes logfmt to whatever sys.stdout is (not a TTY here)."""
    log.print("to stdout")
    assert capsys.readouterr().out.endswith('level=info msg="to stdout"\n')


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"format": "json"}, "format"),
        ({"output": object()}, "output"),
        ({"outputs": [(io.StringIO(),)]}, "outputs"),
        ({"outputs": [(io.StringIO(), log.format_text)], "format": log.format_text}, "outputs"),
        ({"max_size": 0}, "max_size"),
        ({"max_buffered": -1}, "max_buffered"),
        ({"max_buffered": True}, "max_buffered"),
        ({"funcs": [1]}, "funcs"),
        ({"disable_buffering": True}, "disable_buffering"),
        ({"debug": "yes"}, "debug"),
        ({"file_location": 1}, "file_location"),
        ({"outputs": []}, "outputs"),
    ],
)
def test_configure_rejects_bad_options(options: dict[str, Any], name: str) -> None:
    """configure raises ValueError naming the bad option."""
    with pytest.raises(ValueError, match=name):
        log.configure(**options)


def test_context_rejects_bad_overrides() -> None:
    """log.context raises ValueError naming a bad override."""
    with pytest.raises(ValueError, match="debug"):
        log.context(debug="on")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        log.context(verbose=True)  # type: ignore[call-arg]


class ShortWrites(io.RawIOBase):
    """A raw stream (an unbuffered pipe or socket) that takes at most ``most`` bytes a call,
    as ``RawIOBase.write`` may."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.data = bytearray()
        self.writes = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.writes += 1
        taken = bytes(b[: self.most])
        self.data += taken
        return len(taken)


@pytest.mark.parametrize("most", [1, 7, 100])
def test_a_raw_stream_that_writes_part_gets_the_rest(most: int) -> None:
    """A raw binary stream may write fewer bytes than given: the rest is written after it,
    so no entry loses its end or runs into the next one."""
    stream = ShortWrites(most)
    log.configure(output=stream, format=log.format_json)
    log.print("one", pad="x" * 150)
    with log.context():
        for i in range(3):
            log.info("e", i=i)
        log.error("flush")
    docs = [json.loads(line) for line in stream.data.decode().splitlines()]
    assert [d["msg"] for d in docs] == ["one", "e", "e", "e", "flush"]
    assert _output_failures(stream) == 0


def _output_failures(stream: object) -> int:
    from clue.log._config import state

    return sum(s.failures for s in state.sinks if s.stream is stream)


class Overlaps(io.StringIO):
    """A stream that tells whether a second write() came in while one was under way: the
    first logfmt write waits (up to a deadline) for another one to enter."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.overlapped = False
        self.entered = threading.Event()
        self.second = threading.Event()

    def write(self, s: str) -> int:
        self.inside += 1
        if self.inside > 1:
            self.overlapped = True
            self.second.set()
        if s.startswith("time=") and not self.entered.is_set():
            self.entered.set()
            self.second.wait(timeout=1.0)  # a deadline, not a pause: set at once on overlap
        n = super().write(s)
        self.inside -= 1
        return n


def test_two_outputs_on_one_stream_never_interleave() -> None:
    """Two outputs on the same stream (JSON and text to stdout) flushed from two threads
    write one batch at a time: no line of one runs into a line of the other."""
    stream = Overlaps()
    log.configure(outputs=[(stream, log.format_json), (stream, log.format_text)])

    def flush(n: int) -> None:
        with log.context():
            log.info("e", n=n)
            log.error("flush", n=n)

    first = threading.Thread(target=flush, args=(1,))
    first.start()
    assert stream.entered.wait(timeout=10)
    second = threading.Thread(target=flush, args=(2,))
    second.start()
    first.join()
    second.join()
    assert not stream.overlapped
    assert len(stream.getvalue().splitlines()) == 8


class Chatty(io.StringIO):
    """An output whose write() logs through clue itself (a logging proxy as stdout)."""

    nested = 0

    def write(self, s: str) -> int:
        if "outer" in s:
            self.nested += 1
            log.print("inner")
        return super().write(s)


def test_an_output_that_logs_while_written_never_deadlocks() -> None:
    """An output whose own write() logs through clue (Celery's stdout proxy bridged back to
    clue) never deadlocks or recurses: the nested entry is refused and counted like any
    output failure, and the outer entry is written."""
    stream = Chatty()
    log.configure(output=stream, format=log.format_text)

    def run() -> None:
        log.print("outer")
        with log.context():
            log.info("outer buffered")
            log.error("outer flush")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "deadlocked"
    msgs = [line.split("msg=")[1] for line in stream.getvalue().splitlines()]
    assert msgs == ["outer", '"outer buffered"', '"outer flush"']
    assert _output_failures(stream) == stream.nested > 0
