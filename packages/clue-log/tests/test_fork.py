"""Fork safety: a process forked while another thread holds clue-log's output lock can log
at once (gunicorn ``--preload``, ``multiprocessing`` with fork)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from clue import log
from clue.log.testing import capture

DEADLINE = 20.0


class BlockingStream(io.StringIO):
    """A stream whose ``write`` from another thread blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.get_ident()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, s: str) -> int:
        if threading.get_ident() != self.owner:
            self.entered.set()
            self.release.wait()
        return super().write(s)


def _fork_and_log(log_in_child: Callable[[], None]) -> int:
    """Fork; the child calls ``log_in_child`` and exits 0, or 3 if it raised. Returns the
    child's exit status; fails if the child has not exited by the deadline."""
    pid = os.fork()
    if pid == 0:  # the child
        code = 3
        try:
            signal.alarm(int(DEADLINE) + 5)  # a hung child must not outlive the test
            log_in_child()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)  # polling the child's exit with a deadline
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on its first log call")


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("call", ["print", "error", "flush"])
def test_fork_while_another_thread_holds_the_output_lock(call: str) -> None:
    """A child forked while another thread is inside clue's write logs at once."""
    stream = BlockingStream()
    log.configure(output=stream, format=log.format_text)
    writer = threading.Thread(target=log.print, args=("from the thread",))
    writer.start()
    try:
        assert stream.entered.wait(DEADLINE)  # the thread now holds the output's lock

        def child() -> None:
            with log.context():
                log.info("buffered in the child")
                if call == "print":
                    log.print("child line")
                elif call == "error":
                    log.error("child error")
                else:
                    log.flush()
            assert "child" in stream.getvalue()

        assert _fork_and_log(child) == 0
    finally:
        stream.release.set()
        writer.join(DEADLINE)
    assert "from the thread" in stream.getvalue()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_capture_is_recording() -> None:
    """``testing.capture()``'s lock is re-created in a forked child too."""
    with capture() as logs:
        logs._lock.acquire()  # as another thread recording an entry would
        try:

            def child() -> None:
                log.print("child line")
                assert logs.messages[-1] == "child line"

            assert _fork_and_log(child) == 0
        finally:
            logs._lock.release()
