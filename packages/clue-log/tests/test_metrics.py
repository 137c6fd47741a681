"""The savings as metrics, read by a real SDK ``MeterProvider`` with an
``InMemoryMetricReader``, each scenario in a fresh interpreter (a process has one global
meter provider): exact counts under threads and asyncio tasks, bytes that match the
output, a provider installed after import, a meter that raises, and fork."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PRELUDE = """
import asyncio, json, os, sys, threading
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

def read(reader):
    got = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            if sm.scope.name != "clue.log":
                continue
            for m in sm.metrics:
                for p in m.data.data_points:
                    attrs = ",".join(f"{k}={v}" for k, v in sorted(p.attributes.items()))
                    got[f"{m.name}|{m.unit}|{attrs}"] = p.value
    return got

def requests(n, fail_every, entries):
    from clue import log
    for i in range(n):
        with log.context():
            for j in range(entries):
                log.info("step", j=j, user="alice")
            if i % fail_every == 0:
                log.error("failed", i=i)
"""


def run(script: str, tmp_path: Path) -> dict[str, Any]:
    """Run ``PRELUDE + script`` in a fresh interpreter; it prints one JSON document."""
    path = tmp_path / "scenario.py"
    path.write_text(PRELUDE + textwrap.dedent(script))
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_exact_counts_from_threads_and_tasks_with_a_provider_installed_after_import(
    tmp_path: Path,
) -> None:
    """Contexts and entries are counted exactly, once each, by outcome, when threads and
    asyncio tasks end contexts at the same time; the output byte counter equals what the
    file received; the provider was installed after ``import clue.log``."""
    got = run(
        """
        from clue import log
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        out = open("out.log", "wb")
        log.configure(output=out, format=log.format_json, max_buffered=5)
        threads = [threading.Thread(target=requests, args=(200, 4, 7)) for _ in range(4)]
        for t in threads:
            t.start()

        async def task(i):
            with log.context():
                for j in range(3):
                    log.info("step", j=j)
                    await asyncio.sleep(0)
                if i % 5 == 0:
                    log.flush()

        async def main():
            await asyncio.gather(*(task(i) for i in range(300)))

        asyncio.run(main())
        for t in threads:
            t.join()
        out.flush()
        print(json.dumps({"metrics": read(reader), "size": os.path.getsize("out.log")}))
        """,
        tmp_path,
    )
    m = got["metrics"]
    # Threads: 4 x 200 contexts, 1 in 4 failed; 7 entries each, 5 kept (2 dropped).
    # Tasks: 300 contexts, 1 in 5 flushed; 3 entries each.
    assert m["clue.log.contexts|{context}|clue.log.outcome=written"] == 4 * 50 + 60
    assert m["clue.log.contexts|{context}|clue.log.outcome=discarded"] == 4 * 150 + 240
    assert m["clue.log.entries|{entry}|clue.log.outcome=written"] == 4 * 50 * 5 + 60 * 3
    assert m["clue.log.entries|{entry}|clue.log.outcome=discarded"] == 4 * 150 * 5 + 240 * 3
    assert m["clue.log.entries|{entry}|clue.log.outcome=dropped"] == 4 * 200 * 2
    assert m["clue.log.output.bytes|By|clue.log.output=stream"] == got["size"] > 0
    assert m["clue.log.buffered.bytes|By|"] == 0


def test_buffered_bytes_while_contexts_are_open(tmp_path: Path) -> None:
    """``clue.log.buffered.bytes`` is what open contexts reserved, and 0 once they end."""
    got = run(
        """
        from clue import log
        from clue.log import _budget
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        log.configure(output=open(os.devnull, "w"))
        cms = [log.context() for _ in range(10)]
        for cm in cms:
            cm.__enter__()
            log.info("payload", body="x" * 5000)
        during = read(reader)["clue.log.buffered.bytes|By|"]
        for cm in reversed(cms):
            cm.__exit__(None, None, None)
        del cm, cms
        after = read(reader)["clue.log.buffered.bytes|By|"]
        print(json.dumps({"during": during, "after": after, "grant": _budget.GRANT}))
        """,
        tmp_path,
    )
    assert got["during"] == 10 * 2 * got["grant"]  # 5 KB each: two reservations of 4 KiB
    assert got["after"] == 0


def test_a_meter_provider_that_raises_never_reaches_the_application(tmp_path: Path) -> None:
    """A meter provider whose meters or instruments raise costs logging nothing."""
    got = run(
        """
        class Broken:
            def get_meter(self, *args, **kwargs):
                raise RuntimeError("meter")

        metrics.set_meter_provider(Broken())
        from clue import log
        log.configure(output=open("out.log", "w"), format=log.format_json)
        requests(20, 2, 3)
        print(json.dumps({"lines": len(open("out.log").read().splitlines())}))
        """,
        tmp_path,
    )
    assert got["lines"] == 10 * 4


def test_a_failing_reader_callback_path_never_raises(tmp_path: Path) -> None:
    """A collection while the budget's figure cannot be read still reports the counters
    and never raises."""
    got = run(
        """
        from clue import log
        from clue.log import _metrics
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        log.configure(output=open(os.devnull, "w"))
        requests(10, 2, 1)

        def broken():
            raise RuntimeError("budget")

        _metrics.buffered = broken
        m = read(reader)
        print(json.dumps({"written": m["clue.log.contexts|{context}|clue.log.outcome=written"]}))
        """,
        tmp_path,
    )
    assert got["written"] == 5


def test_a_forked_child_counts_from_zero(tmp_path: Path) -> None:
    """A forked child counts what it does itself; the parent's counts go on unchanged."""
    got = run(
        """
        from clue import log
        from clue.log import _budget
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        log.configure(output=open(os.devnull, "w"))
        requests(10, 10, 2)
        with log.context():
            log.info("held across the fork", body="x" * 100)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                before = read(reader)
                requests(3, 1, 2)
                log.info("after the fork")
                child = read(reader)
                os.write(w, json.dumps({"before": before, "child": child}).encode())
                os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.waitpid(pid, 0)
        parent = read(reader)
        print(json.dumps({"parent": parent, **json.loads(b"".join(chunks))}))
        """,
        tmp_path,
    )
    w = "clue.log.contexts|{context}|clue.log.outcome=written"
    d = "clue.log.contexts|{context}|clue.log.outcome=discarded"
    assert got["before"][w] == 0
    assert got["before"][d] == 0
    assert got["child"][w] == 3
    assert got["child"]["clue.log.buffered.bytes|By|"] > 0  # the inherited context re-reserved
    assert got["parent"][w] == 1
    assert got["parent"][d] == 10
    assert got["parent"]["clue.log.buffered.bytes|By|"] == 0


def test_output_bytes_are_what_every_kind_of_stream_received(tmp_path: Path) -> None:
    """``clue.log.output.bytes`` grows by exactly the bytes each stream received, for every
    format and every kind of stream: text streams in their own encoding (one that cannot
    hold every character, one of two bytes a character), binary streams, a raw stream that
    takes part of each write then fails, a raw stream that would block, and a stream that
    refuses an entry until it is escaped."""
    got = run(
        """
        import io
        from clue import log

        class Partial(io.RawIOBase):
            # Takes 7 bytes a write, and refuses every write after the third.
            def __init__(self):
                self.data, self.calls = bytearray(), 0
            def writable(self):
                return True
            def write(self, b):
                self.calls += 1
                if self.calls > 3:
                    raise OSError("broken pipe")
                self.data += bytes(b)[:7]
                return min(7, len(b))

        class WouldBlock(io.RawIOBase):
            # Every other write would block: it takes nothing and returns None.
            def __init__(self):
                self.data, self.calls = bytearray(), 0
            def writable(self):
                return True
            def write(self, b):
                self.calls += 1
                if self.calls % 2:
                    return None
                self.data += bytes(b)
                return len(b)

        class Ascii(io.StringIO):
            # Refuses what ASCII cannot hold, like a strict ASCII terminal.
            encoding = "ascii"
            def write(self, s):
                s.encode("ascii")
                return super().write(s)

        def wrapper(encoding):
            return lambda: io.TextIOWrapper(io.BytesIO(), encoding=encoding)

        def received(s):
            if hasattr(s, "buffer"):
                s.flush()
                return len(s.buffer.getvalue())
            if isinstance(s, io.StringIO):
                return len(s.getvalue().encode())
            return len(s.data) if hasattr(s, "data") else len(s.getvalue())

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        key = "clue.log.output.bytes|By|clue.log.output=stream"
        streams = {
            "stringio": io.StringIO,
            "bytesio": io.BytesIO,
            "utf-8": wrapper("utf-8"),
            "latin-1": wrapper("latin-1"),
            "ascii": wrapper("ascii"),
            "utf-16-le": wrapper("utf-16-le"),
            "partial": Partial,
            "would-block": WouldBlock,
            "refusing": Ascii,
        }
        formats = {
            "text": log.format_text,
            "json": log.format_json,
            "terminal": log.format_terminal,
            "custom": lambda e: f"custom {e.key_vals[0][1]} \\u00fc\\u2603\\n",
        }
        mismatches = []
        for sname, make in streams.items():
            for fname, fmt in formats.items():
                stream = make()
                log.configure(output=stream, format=fmt)
                before = read(reader).get(key, 0)
                with log.context():
                    log.info("h\\u00e9llo \\u2603 \\U0001d11e", x="\\u00e9" * 5, y=b"\\xff\\0")
                    log.error("fail \\u00fc")
                log.print("print \\u2028 ok")
                counted = read(reader).get(key, 0) - before
                if counted != received(stream):
                    mismatches.append([sname, fname, counted, received(stream)])
        print(json.dumps({"mismatches": mismatches}))
        """,
        tmp_path,
    )
    assert got["mismatches"] == []


def test_a_provider_installed_after_import_that_misbehaves_costs_nothing(tmp_path: Path) -> None:
    """Installing, after ``import clue.log``, a meter provider whose ``get_meter`` raises or
    returns None, or whose instruments raise, never makes ``set_meter_provider`` raise
    because of clue's instruments, and logging goes on; a real provider whose meter refuses
    one of clue's instruments still gets the others."""
    got = run(
        """
        import io, subprocess
        from clue import log

        mode = sys.argv[1] if len(sys.argv) > 1 else None
        if mode is None:
            results = {}
            for mode in ["meter-raises", "meter-none", "instruments-raise", "one-refused"]:
                proc = subprocess.run(
                    [sys.executable, __file__, mode], capture_output=True, text=True
                )
                results[mode] = proc.stdout.strip().splitlines()[-1:] or [proc.stderr[-500:]]
            print(json.dumps(results))
            sys.exit(0)

        class Meter:
            def __getattr__(self, name):
                def create(*args, **kwargs):
                    raise RuntimeError("instrument")
                return create

        class Provider:
            def get_meter(self, *args, **kwargs):
                if mode == "meter-raises":
                    raise RuntimeError("meter")
                return None if mode == "meter-none" else Meter()

        reader = InMemoryMetricReader()
        if mode == "one-refused":
            class Refusing(MeterProvider):
                def get_meter(self, *args, **kwargs):
                    meter = super().get_meter(*args, **kwargs)
                    create = meter.create_observable_counter
                    def refuse(name, *a, **k):
                        if name == "clue.log.contexts":
                            raise RuntimeError("refused")
                        return create(name, *a, **k)
                    meter.create_observable_counter = refuse
                    return meter
            provider = Refusing(metric_readers=[reader])
        else:
            provider = Provider()
        try:
            metrics.set_meter_provider(provider)
            installed = "ok"
        except Exception as exc:
            installed = f"{type(exc).__name__}: {exc}"
        out = io.StringIO()
        log.configure(output=out, format=log.format_json)
        requests(4, 2, 3)
        got = read(reader) if mode == "one-refused" else {}
        print(json.dumps([installed, len(out.getvalue().splitlines()), sorted(got)]))
        """,
        tmp_path,
    )
    lines = 2 * 4  # two failing requests of three entries and the error
    for mode in ["meter-raises", "meter-none", "instruments-raise"]:
        assert json.loads(got[mode][0]) == ["ok", lines, []], (mode, got[mode])
    installed, written, names = json.loads(got["one-refused"][0])
    assert (installed, written) == ("ok", lines)
    assert not any(n.startswith("clue.log.contexts|") for n in names)
    assert any(n.startswith("clue.log.entries|") for n in names)
    assert "clue.log.buffered.bytes|By|" in names


def test_drops_before_a_fork_are_counted_by_the_parent_only(tmp_path: Path) -> None:
    """A context open across a fork: the entries it dropped before the fork are the
    parent's doing, counted once, by the parent; the child counts the drops it makes
    itself, while its marker still says how many its written context lost in all."""
    got = run(
        """
        import gc
        from clue import log
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        out = open("out.log", "w")
        log.configure(output=out, format=log.format_json, max_buffered=5)
        cm = log.context()
        cm.__enter__()
        for i in range(20):
            log.info("parent", i=i)  # 15 dropped before the fork
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for i in range(3):
                log.info("child", i=i)  # 3 more dropped, by the child
            log.error("failed")
            cm.__exit__(None, None, None)
            del cm
            gc.collect()
            out.flush()
            marker = json.loads(open("out.log").readline())["clue.dropped"]
            dropped = read(reader)["clue.log.entries|{entry}|clue.log.outcome=dropped"]
            os.write(w, json.dumps({"marker": marker, "dropped": dropped}).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        child = json.loads(os.read(r, 65536))
        cm.__exit__(None, None, None)
        del cm
        gc.collect()
        parent = read(reader)["clue.log.entries|{entry}|clue.log.outcome=dropped"]
        print(json.dumps({"child": child, "parent": parent}))
        """,
        tmp_path,
    )
    assert got["child"]["marker"] == 18
    assert got["parent"] == 15
    assert got["child"]["dropped"] == 3


def test_a_context_counts_as_written_only_when_its_buffer_was(tmp_path: Path) -> None:
    """``clue.log.contexts``: a flush or an error makes a context ``written``; a
    ``log.print`` alone, which writes without touching the buffer, leaves it
    ``discarded``."""
    got = run(
        """
        import gc
        from clue import log
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        log.configure(output=open(os.devnull, "w"))
        key = "clue.log.contexts|{context}|clue.log.outcome="
        outcomes = {}

        def ends(name, body):
            before = read(reader)
            with log.context():
                body()
            gc.collect()
            after = read(reader)
            outcomes[name] = {
                o: after.get(key + o, 0) - before.get(key + o, 0) for o in ("written", "discarded")
            }

        ends("print", lambda: (log.info("kept"), log.print("now")))
        ends("flush", lambda: (log.info("kept"), log.flush()))
        ends("error", lambda: (log.info("kept"), log.error("failed")))
        print(json.dumps(outcomes))
        """,
        tmp_path,
    )
    assert got == {
        "print": {"written": 0, "discarded": 1},
        "flush": {"written": 1, "discarded": 0},
        "error": {"written": 1, "discarded": 0},
    }
