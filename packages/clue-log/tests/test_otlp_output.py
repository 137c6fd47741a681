"""``log.otlp_output()``: written entries as OpenTelemetry log records, through a real SDK
``LoggerProvider`` and an in-memory exporter. Runs on the newest API (records emitted with
keywords and a ``context``) and, in the ``lowest`` session, on 1.25 (``LogRecord`` built
with ``trace_id``/``span_id``/``trace_flags``).

The attributes are checked against the JSON format for the same entry: the JSON line,
parsed, then OTLP's own type mapping (``expected``)."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs import export as sdk_export
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from clue import log
from clue.log.testing import reset

from . import hostile
from .hostile import loads_strict
from .test_hostile import line_bound

InMemoryExporter: Any = (
    getattr(sdk_export, "InMemoryLogRecordExporter", None) or sdk_export.InMemoryLogExporter
)

INT64 = (-(2**63), 2**63)
NOT_ATTRIBUTES = ("time", "level", "msg")


class Pipeline:
    """A real SDK logger provider exporting to memory, with clue writing to it and to a
    JSON stream (the reference the attributes are checked against)."""

    def __init__(self, *processors: Any) -> None:
        self.exporter = InMemoryExporter()
        self.provider = LoggerProvider()
        for p in processors:
            self.provider.add_log_record_processor(p)
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.output = log.otlp_output(logger_provider=self.provider)
        self.json = io.BytesIO()

    def configure(self, **options: Any) -> Pipeline:
        log.configure(outputs=[(self.json, log.format_json), self.output], **options)
        return self

    def records(self) -> list[Any]:
        return [d.log_record for d in self.exporter.get_finished_logs()]

    def bodies(self) -> list[Any]:
        return [r.body for r in self.records()]

    def lines(self) -> list[dict[str, Any]]:
        return [loads_strict(line) for line in self.json.getvalue().splitlines()]


@pytest.fixture
def otlp() -> Pipeline:
    return Pipeline().configure()


# --- the oracle: what the JSON format wrote, as OTLP carries it -----------------------------


def _utf8(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def expected(doc: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``(body, attributes)`` for a parsed JSON line: strings as valid UTF-8, integers past
    int64 as their digits, containers as JSON (compared parsed), null left out, the empty
    key as ``_`` (as in logfmt), a renamed key that would take another's name with more
    leading underscores."""
    attrs: dict[str, Any] = {}
    taken = set(doc)
    for k, v in doc.items():
        if k in NOT_ATTRIBUTES or v is None:
            continue
        value = v
        if type(v) is str:
            value = _utf8(v)
        elif type(v) is int and not INT64[0] <= v < INT64[1]:
            value = str(v)
        name = _utf8(k) or "_"
        if name != k:  # renamed: more leading underscores until it has its own name
            while name in taken:
                name = "_" + name
            taken.add(name)
        attrs[name] = value
    body = doc.get("msg")
    return (_utf8(body) if isinstance(body, str) else body), attrs


def actual(record: Any) -> tuple[Any, dict[str, Any]]:
    """``(body, attributes)`` of a record, containers parsed back from their JSON text."""
    attrs: dict[str, Any] = {}
    for k, v in dict(record.attributes or {}).items():
        assert type(k) is str
        k.encode("utf-8")  # OTLP strings are UTF-8
        attrs[k] = _carried(v)
    return record.body, attrs


def _carried(v: Any) -> Any:
    """A value as OTLP can carry it (else the test fails), containers parsed back."""
    t = type(v)
    if t is str:
        v.encode("utf-8")
        if v[:1] in ("[", "{"):
            try:
                return json.loads(v, parse_constant=_no_constant)
            except ValueError:
                return v
        return v
    if t is int:
        assert INT64[0] <= v < INT64[1], v
        return v
    if t is float:
        assert math.isfinite(v), v
        return v
    assert t is bool, (t, v)
    return v


def _no_constant(name: str) -> None:
    raise AssertionError(f"non-strict JSON constant {name}")


def _parsed(expected_attrs: dict[str, Any]) -> dict[str, Any]:
    # A string value that is itself JSON text reads back parsed, as _carried reads it.
    return {k: _carried(v) if type(v) is str else v for k, v in expected_attrs.items()}


def assert_same_as_json(p: Pipeline) -> None:
    """Every record carries what the JSON line of the same entry holds."""
    records, lines = p.records(), p.lines()
    assert len(records) == len(lines)
    for record, line in zip(records, lines, strict=True):
        body, attrs = expected(line)
        got_body, got_attrs = actual(record)
        assert got_body == body
        assert got_attrs == _parsed(attrs)


# --- the request's entries ------------------------------------------------------------------


def test_a_failed_request_emits_its_entries_in_order_with_the_calls_times(otlp: Pipeline) -> None:
    """Buffered entries reach the logger provider when the request fails, in order, each
    with its call's time as ``timestamp`` and the flush's as ``observed_timestamp``."""
    calls: list[tuple[int, int]] = []
    with log.context():
        for i in range(5):
            before = time.time_ns()
            log.info("step %d", i, i=i)
            calls.append((before, time.time_ns()))
        assert otlp.records() == []
        flushed = time.time_ns()
        log.error("failed", err="card declined")
    records = otlp.records()
    assert [r.body for r in records] == [*(f"step {i}" for i in range(5)), "failed"]
    for record, (before, after) in zip(records, calls, strict=False):
        assert before <= record.timestamp <= after
        assert record.observed_timestamp >= flushed
        assert record.timestamp < flushed
    assert dict(records[-1].attributes) == {"err": "card declined"}
    assert [dict(r.attributes)["i"] for r in records[:5]] == list(range(5))
    assert_same_as_json(otlp)


def test_a_successful_unsampled_request_emits_nothing(otlp: Pipeline) -> None:
    """The point of clue: no record for a request that neither failed nor was traced."""
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    for _ in range(3):
        with log.context(), tracer.start_as_current_span("request"):
            log.info("fine")
            log.warn("still fine")
    assert otlp.records() == []
    assert otlp.json.getvalue() == b""


def test_a_traced_request_emits_at_once(otlp: Pipeline) -> None:
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("t")
    with log.context(), tracer.start_as_current_span("request") as span:
        log.info("traced")
        assert otlp.bodies() == ["traced"]
    assert otlp.records()[0].trace_id == span.get_span_context().trace_id


def test_the_ids_are_the_calls_not_the_flushs(otlp: Pipeline) -> None:
    """An entry logged inside span A and flushed inside span B carries A's ids; one logged
    outside any span carries none, even when flushed inside a span."""
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    with log.context():
        log.info("no span")
        with tracer.start_as_current_span("A") as a:
            log.info("in A")
        with tracer.start_as_current_span("B") as b:
            log.error("in B")
    by_body = {r.body: r for r in otlp.records()}
    sa, sb = a.get_span_context(), b.get_span_context()
    assert (by_body["in A"].trace_id, by_body["in A"].span_id) == (sa.trace_id, sa.span_id)
    assert (by_body["in B"].trace_id, by_body["in B"].span_id) == (sb.trace_id, sb.span_id)
    assert sa.span_id != sb.span_id
    assert (by_body["no span"].trace_id, by_body["no span"].span_id) == (0, 0)
    assert int(by_body["in A"].trace_flags) == int(sa.trace_flags)


def test_the_ids_of_an_entry_written_at_once_and_of_the_slow_path(otlp: Pipeline) -> None:
    """The immediate path and the buffered slow path (``err=``, extras) capture the span
    at the call as well."""
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    with tracer.start_as_current_span("outside") as s:
        log.print("immediate")
    with log.context():
        with tracer.start_as_current_span("A") as a:
            log.info("slow path", err=ValueError("x"))
        log.error("flush")
    by_body = {r.body: r for r in otlp.records()}
    assert by_body["immediate"].span_id == s.get_span_context().span_id
    assert by_body["slow path"].span_id == a.get_span_context().span_id
    assert by_body["flush"].span_id == 0


def test_severities() -> None:
    """clue's levels map to OpenTelemetry's severity numbers, and the level name is the
    severity text (the README's table)."""
    p = Pipeline().configure(debug=True)
    log.debug("d")
    log.info("i")
    log.warn("w")
    log.error("e")
    got = [(r.body, int(r.severity_number.value), r.severity_text) for r in p.records()]
    assert got == [("d", 5, "debug"), ("i", 9, "info"), ("w", 13, "warn"), ("e", 17, "error")]


def test_the_dropped_marker_is_a_record_too() -> None:
    p = Pipeline().configure(max_buffered=2)
    with log.context():
        for i in range(5):
            log.info(f"m{i}")
        log.error("e")
    records = p.records()
    assert [r.body for r in records[1:]] == ["m3", "m4", "e"]
    assert dict(records[0].attributes) == {"clue.dropped": 3}
    assert records[0].severity_text == "warn"
    assert_same_as_json(p)


def test_keys_are_escaped_as_in_the_json_format(otlp: Pipeline) -> None:
    """An application's key named like one clue writes gets one more ``_``: it never
    becomes the body or forges clue's keys."""
    with log.context():
        log.info("real message", msg="forged", time="t", level="l", _msg="m")
        log.error("e")
    record = otlp.records()[0]
    assert record.body == "real message"
    attrs = dict(record.attributes)
    assert attrs == {"_msg": "forged", "_time": "t", "_level": "l", "__msg": "m"}
    assert_same_as_json(otlp)


def test_renamed_keys_are_followed() -> None:
    """With ``MESSAGE_KEY``, ``TIMESTAMP_KEY`` and ``SEVERITY_KEY`` renamed, the body is
    still the message and neither the time nor the level is an attribute."""
    names = (log.MESSAGE_KEY, log.TIMESTAMP_KEY, log.SEVERITY_KEY)
    log.MESSAGE_KEY, log.TIMESTAMP_KEY, log.SEVERITY_KEY = "message", "ts", "severity"
    try:
        p = Pipeline().configure()
        log.print("hello", msg="mine", ts="t")
        record = p.records()[0]
        assert record.body == "hello"
        assert dict(record.attributes) == {"msg": "mine", "_ts": "t"}
    finally:
        log.MESSAGE_KEY, log.TIMESTAMP_KEY, log.SEVERITY_KEY = names


# --- values: the JSON format's conversion, then OTLP's types ---------------------------------


class Thing:
    def __init__(self, n: int) -> None:
        self.n = n

    def __str__(self) -> str:
        return f"thing-{self.n}"


_scalars = (
    st.text()
    | st.builds(lambda a, b: a + "\udcff" + b, st.text(max_size=5), st.text(max_size=5))
    | st.integers()
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**400])
    | st.floats()
    | st.booleans()
    | st.none()
    | st.binary(max_size=20)
    | st.builds(bytearray, st.binary(max_size=5))
    | st.builds(Thing, st.integers())
    | st.datetimes(timezones=st.just(UTC))
    | st.sets(st.integers(), max_size=4)
    | st.frozensets(st.text(max_size=3), max_size=3)
)
_keys_of_maps = st.text(max_size=8) | st.integers() | st.none() | st.tuples(st.integers())
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_keys_of_maps, inner, max_size=4)
    ),
    max_leaves=12,
)
_names = st.text(min_size=0, max_size=12) | st.sampled_from(hostile.keys())


@settings(max_examples=150, deadline=None)
@given(
    entries=st.lists(
        st.dictionaries(_names.filter(lambda k: k != "exc_info"), _values, max_size=4),
        min_size=1,
        max_size=4,
    ),
    max_size=st.sampled_from([8, 64, 1024]),
)
def test_attributes_are_what_the_json_format_writes(
    entries: list[dict[str, Any]], max_size: int
) -> None:
    """For any values and keys, each record carries exactly what the JSON line of the same
    entry holds (after OTLP's own types), in order, one record per line."""
    reset()
    p = Pipeline().configure(max_size=max_size)
    with log.context():
        for i, kv in enumerate(entries):
            log.info(f"entry {i}", **kv)
        log.error("end")
    assert len(p.records()) == len(entries) + 1
    assert_same_as_json(p)


def test_the_hostile_corpus() -> None:
    """Every hostile value and key, buffered and written at once: every entry is emitted
    (the pipeline refuses none), carries only what OTLP can carry, is bounded like a JSON
    line, and holds what the JSON line holds."""
    # The corpus's huge values together pass the default 1 MiB a context keeps.
    p = Pipeline().configure(max_buffered_bytes=1 << 28)
    values = [name for name, _ in hostile.values()]
    keys = [f"key {i}" for i in range(len(hostile.keys()))]
    with log.context():
        for name, value in hostile.values():
            log.info(name, v=value, after="kept")
        for name, key in zip(keys, hostile.keys(), strict=True):
            log.info(name, **{key: "x", "after": "kept"})
        log.error("flush")
    for name, value in hostile.values():
        log.print(name, v=value, after="kept")
    records = p.records()
    assert [r.body for r in records] == [*values, *keys, "flush", *values]
    assert p.output.failures == 0
    for record in records:
        actual(record)  # only what OTLP carries
        attrs = dict(record.attributes or {})
        assert record.body == "flush" or attrs["after"] == "kept"
        size = sum(len(k) + len(str(v)) for k, v in attrs.items())
        assert size <= line_bound(1024)
    assert_same_as_json(p)


# --- failures cost their entry only ---------------------------------------------------------


class Refusing(LogRecordProcessor):  # type: ignore[misc]
    """A processor that raises on the records whose body is ``bad`` (SDK 1.25 calls
    ``emit``, newer ones ``on_emit``)."""

    def __init__(self) -> None:
        self.seen = 0

    def _check(self, record: Any) -> None:
        self.seen += 1
        if record.body == "bad":
            raise RuntimeError("refused")

    def emit(self, log_data: Any) -> None:
        self._check(log_data.log_record)

    def on_emit(self, log_record: Any) -> None:
        self._check(log_record.log_record if hasattr(log_record, "log_record") else log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_a_raising_processor_costs_its_entry_only() -> None:
    refusing = Refusing()
    p = Pipeline(refusing).configure()
    with log.context():
        log.info("a")
        log.info("bad")
        log.info("c")
        log.error("e")
    log.print("bad")
    log.print("after")
    assert p.bodies() == ["a", "c", "e", "after"]
    assert p.output.failures == 2
    assert refusing.seen == 6
    assert [line["msg"] for line in p.lines()] == ["a", "bad", "c", "e", "bad", "after"]


class Relogging(Refusing):
    """A processor that logs through clue while it handles a record."""

    def _check(self, record: Any) -> None:
        self.seen += 1
        log.print("logged by the pipeline")


def test_a_pipeline_that_logs_through_clue_does_not_reenter() -> None:
    """What the pipeline logs while emitting reaches the stream outputs, not the OTLP
    output it is running in (no recursion, no deadlock)."""
    p = Pipeline(Relogging()).configure()
    log.print("one")
    assert p.bodies() == ["one"]
    assert [line["msg"] for line in p.lines()] == ["one", "logged by the pipeline"]
    assert p.output.failures == 1


def test_nothing_is_converted_without_a_logger_provider() -> None:
    """With no logger provider installed (the API's proxy), entries cost no conversion."""
    rendered = []

    class Watched:
        def __str__(self) -> str:
            rendered.append(1)
            return "watched"

    log.configure(output=log.otlp_output())
    with log.context():
        log.info("x", v=Watched())
        log.error("e", v=Watched())
    assert rendered == []


GLOBAL_PROVIDER = textwrap.dedent(
    """
    import json
    from opentelemetry import _logs, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs import export
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from clue import log

    Exporter = getattr(export, "InMemoryLogRecordExporter", None) or export.InMemoryLogExporter
    log.configure(output=log.otlp_output())
    with log.context():
        log.info("before any provider")
        log.error("not emitted")
    exporter = Exporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    _logs.set_logger_provider(provider)
    trace.set_tracer_provider(TracerProvider())
    with log.context(), trace.get_tracer("t").start_as_current_span("s") as span:
        log.info("a")
        log.error("b")
    out = []
    for data in exporter.get_finished_logs():
        r = data.log_record
        out.append([r.body, r.trace_id == span.get_span_context().trace_id])
        out.append(data.instrumentation_scope.name)
    print(json.dumps(out))
    """
)


def test_the_global_provider_is_looked_up_when_writing() -> None:
    """In a real process: ``configure(output=log.otlp_output())`` before any provider is
    installed; the provider installed later receives the records, under scope
    ``clue.log``."""
    proc = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDER],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [["a", True], "clue.log", ["b", True], "clue.log"]


# --- configuration --------------------------------------------------------------------------


def test_usable_alone_or_beside_streams() -> None:
    out = io.StringIO()
    p = Pipeline()
    log.configure(output=p.output)
    log.print("alone")
    log.configure(outputs=[p.output, (out, log.format_text)])
    log.print("beside")
    assert p.bodies() == ["alone", "beside"]
    assert out.getvalue().count("\n") == 1


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"format": log.format_json}, "format"),
        ({"outputs": [(io.StringIO(), log.format_json)]}, "outputs"),
    ],
)
def test_output_takes_no_format_nor_outputs(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        log.configure(output=log.otlp_output(), **options)


def test_outputs_validation() -> None:
    with pytest.raises(ValueError, match=r"outputs\[0\].*otlp_output\(\) takes no format"):
        log.configure(outputs=[(log.otlp_output(), log.format_json)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"outputs\[1\] must be a \(stream, format\) pair or"):
        log.configure(outputs=[log.otlp_output(), object()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="output must be a stream"):
        log.configure(output=object())  # type: ignore[arg-type]


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="provider"):
        log.otlp_output(provider=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="name"):
        log.otlp_output(name="")
    with pytest.raises(ValueError, match="logger_provider"):
        log.otlp_output(logger_provider=object())  # type: ignore[arg-type]
    p = Pipeline()
    log.configure(output=log.otlp_output(logger_provider=p.provider, name="my.service"))
    log.print("x")
    data = p.exporter.get_finished_logs()
    assert [d.instrumentation_scope.name for d in data] == ["my.service"]


# --- fork -----------------------------------------------------------------------------------


class Blocking(Refusing):
    """A processor that blocks another thread's record until released."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.get_ident()
        self.entered = threading.Event()
        self.release = threading.Event()

    def _check(self, record: Any) -> None:
        if threading.get_ident() != self.owner:
            self.entered.set()
            self.release.wait()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_while_another_thread_emits_can_emit() -> None:
    """The output holds no lock of its own: a child forked while another thread is inside
    an emit emits at once (its records reach the child's exporter)."""
    blocking = Blocking()
    p = Pipeline(blocking).configure()
    thread = threading.Thread(target=log.print, args=("from a thread",))
    thread.start()
    assert blocking.entered.wait(20)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 3
        try:
            signal.alarm(25)
            with log.context():
                log.info("child a")
                log.error("child b")
            os.write(write, json.dumps(p.bodies()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as r:
            got = r.read()
        _, status = os.waitpid(pid, 0)
    finally:
        blocking.release.set()
        thread.join(20)
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(got) == ["child a", "child b"]
    assert p.bodies()[-1] == "from a thread"


def test_the_record_time_is_the_json_lines_time() -> None:
    """``timestamp`` is the call's, whatever the entry's position in the batch: a record's
    time equals the JSON line's time to the second."""
    p = Pipeline().configure()
    with log.context():
        log.info("x")
        log.error("y")
    for record, line in zip(p.records(), p.lines(), strict=True):
        at = datetime.fromtimestamp(record.timestamp // 10**9, UTC)
        assert at.strftime("%Y-%m-%dT%H:%M:%SZ") == line["time"]


# --- what the pipeline logs from its own threads, key collisions, the entry's time ----------


class _LoggingExporter:
    """An exporter that logs a warning through ``logging`` on every export, as the OTLP
    exporters do when the collector is unreachable; it stops logging after ``limit``
    exports so that a pipeline feeding itself ends."""

    def __init__(self, limit: int) -> None:
        self.bodies: list[Any] = []
        self.exports = 0
        self.limit = limit

    def export(self, batch: Any) -> Any:
        self.exports += 1
        self.bodies.extend(d.log_record.body for d in batch)
        if self.exports <= self.limit:
            logging.getLogger("clue.tests.exporter").warning("export failed, retrying")
        return sdk_export.LogExportResult.FAILURE

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_what_the_exporter_logs_is_not_exported_again() -> None:
    """An exporter that logs through clue (the stdlib bridge) while a batch processor
    exports, in the exporting thread (its worker, or ``force_flush`` in the caller's):
    the line reaches the stream outputs and is not emitted, so a failing exporter does not
    feed itself records forever (``force_flush`` would never return)."""
    exporter = _LoggingExporter(limit=20)
    provider = LoggerProvider()
    processor = sdk_export.BatchLogRecordProcessor(exporter)
    provider.add_log_record_processor(processor)
    handler = log.StdlibHandler()
    logging.getLogger("clue.tests.exporter").addHandler(handler)
    out = io.StringIO()
    try:
        log.configure(outputs=[(out, log.format_json), log.otlp_output(logger_provider=provider)])
        log.print("from the application")
        provider.force_flush()
        provider.force_flush()
    finally:
        logging.getLogger("clue.tests.exporter").removeHandler(handler)
        provider.shutdown()
    assert exporter.bodies == ["from the application"]
    assert out.getvalue().count("export failed, retrying") == exporter.exports


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["", "_", "__", "a\udcff", "a\\udcff", "_a\\udcff", "\ud800", "\\ud800"])
        | st.text(max_size=4),
        min_size=1,
        max_size=8,
        unique=True,
    )
)
def test_distinct_keys_stay_distinct_attributes(keys: list[str]) -> None:
    """Keys OTLP cannot carry as they are (the empty key, lone surrogates) never take the
    name of another key of the entry: every key/value the JSON line holds is an attribute."""
    p = Pipeline().configure()
    log.print("m", **{k: i for i, k in enumerate(keys)})
    (record,) = p.records()
    (line,) = p.lines()
    assert sorted(dict(record.attributes).values()) == sorted(
        v for k, v in line.items() if k not in NOT_ATTRIBUTES
    )


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**63 - 1) | st.integers(1, 2**63 // 10**9).map(lambda s: s * 10**9 - 1))
def test_the_entrys_time_is_the_records_time(time_ns: int) -> None:
    """``Entry.time`` (what a custom format shows) is the record's ``timestamp`` cut to the
    microsecond, never rounded up into the next second (the JSON line's second)."""
    entry = log.Entry(time_ns, "info", [("msg", "x")])
    micros = (entry.time - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert micros == time_ns // 1000


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"outputs": log.otlp_output()}, "outputs"),
        ({"outputs": "stdout"}, "outputs"),
        ({"outputs": 1}, "outputs"),
    ],
)
def test_outputs_that_is_not_a_list_is_a_value_error_naming_it(
    options: dict[str, Any], option: str
) -> None:
    """``outputs=log.otlp_output()`` (meant as ``output=``) or another non-list names the
    option, as every misuse in ``log.configure`` does."""
    with pytest.raises(ValueError, match=f"^{option} must be a list"):
        log.configure(**options)


def test_a_name_utf8_cannot_hold_is_refused() -> None:
    """The scope name goes on every exported batch: one OTLP cannot encode (a lone
    surrogate) is refused when the output is made, not lost with every export."""
    with pytest.raises(ValueError, match=r"^name must be"):
        log.otlp_output(name="svc\udcff")


def test_what_a_simple_processors_exporter_logs_is_not_a_failure() -> None:
    """With a simple processor the exporter runs inside the emit: what it logs then is
    logged while instrumentation is suppressed, so it reaches the stream outputs and is
    neither emitted nor counted as a failure."""
    exporter = _LoggingExporter(limit=20)
    p = Pipeline(SimpleLogRecordProcessor(exporter))
    handler = log.StdlibHandler()
    logging.getLogger("clue.tests.exporter").addHandler(handler)
    try:
        p.configure()
        log.print("from the application")
    finally:
        logging.getLogger("clue.tests.exporter").removeHandler(handler)
    assert exporter.bodies == ["from the application"]
    assert p.bodies() == ["from the application"]
    assert [line["msg"] for line in p.lines()] == [
        "from the application",
        "export failed, retrying",
    ]
    assert p.output.failures == 0
