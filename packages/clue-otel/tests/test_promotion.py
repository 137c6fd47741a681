"""Error promotion: unsampled traces are recorded and exported only if they end in error."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clue.otel import Config, ErrorPromotionProcessor, configure_opentelemetry, new_config
from clue.otel._promotion import RecordDropped


class Setup:
    """A configured pipeline whose sampler now drops every new root trace."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.cfg: Config = new_config(
            "promo", "1", span_exporter=self.exporter, error_promotion=True, max_sampling_rate=1e-9
        )
        configure_opentelemetry(self.cfg, shutdown_at_exit=False)
        self.tracer = trace.get_tracer("test")
        # The first window's sample_size - 1 decisions are sampled (no estimate yet): use
        # them up; the sample_size-th decision, the test's first root, is dropped.
        for _ in range(self.cfg.sampler.sample_size - 1):  # type: ignore[union-attr]
            self.tracer.start_span("warm-up").end()
        self.flush()
        self.exporter.clear()

    def flush(self) -> None:
        assert self.cfg.force_flush(5)

    def exported(self) -> list[Any]:
        self.flush()
        return list(self.exporter.get_finished_spans())

    @property
    def processor(self) -> ErrorPromotionProcessor:
        assert self.cfg.error_promotion is not None
        return self.cfg.error_promotion


@pytest.fixture
def setup() -> Setup:
    return Setup()


def test_unsampled_trace_without_error_is_discarded(setup: Setup) -> None:
    """A dropped trace that ends without error exports nothing."""
    with setup.tracer.start_as_current_span("root") as root:
        assert root.is_recording()
        assert not root.get_span_context().trace_flags.sampled
        with setup.tracer.start_as_current_span("child"):
            pass
    assert setup.exported() == []
    stats = setup.processor.stats()
    assert (stats.discarded_traces, stats.promoted_traces, stats.held_traces) == (1, 0, 0)


def test_exception_event_promotes_the_whole_trace(setup: Setup) -> None:
    """A span.record_exception anywhere in the trace exports all its spans, parent links intact."""
    with setup.tracer.start_as_current_span("root") as root:
        with setup.tracer.start_as_current_span("child") as child:
            child.record_exception(ValueError("boom"))
        with setup.tracer.start_as_current_span("sibling"):
            pass
    spans = {s.name: s for s in setup.exported()}
    assert set(spans) == {"root", "child", "sibling"}
    assert spans["child"].parent.span_id == root.get_span_context().span_id
    assert all(s.context.trace_flags.sampled for s in spans.values())
    assert spans["child"].events[0].name == "exception"
    assert setup.processor.stats().promoted_traces == 1


def test_add_event_named_exception_promotes(setup: Setup) -> None:
    """An event named "exception" (as clue-log's error() adds) counts as an error."""
    with setup.tracer.start_as_current_span("root"):
        trace.get_current_span().add_event(
            "exception", {"exception.type": "str", "exception.message": "failed"}
        )
    assert [s.name for s in setup.exported()] == ["root"]


def test_error_status_promotes(setup: Setup) -> None:
    """A span with ERROR status promotes its trace."""
    with setup.tracer.start_as_current_span("root"), setup.tracer.start_as_current_span("db") as db:
        db.set_status(StatusCode.ERROR, "timeout")
    assert sorted(s.name for s in setup.exported()) == ["db", "root"]


def test_exception_escaping_a_span_promotes(setup: Setup) -> None:
    """An exception escaping start_as_current_span promotes the trace and still propagates."""
    with pytest.raises(KeyError), setup.tracer.start_as_current_span("root"):
        raise KeyError("missing")
    (root,) = setup.exported()
    assert root.status.status_code is StatusCode.ERROR


def test_children_of_recorded_parent_are_recorded_but_not_sampled(setup: Setup) -> None:
    """Children of an unsampled recorded parent record too, and the wire flag stays off."""
    with (
        setup.tracer.start_as_current_span("root"),
        setup.tracer.start_as_current_span("child") as child,
    ):
        assert child.is_recording()
        assert not child.get_span_context().trace_flags.sampled
        headers: dict[str, str] = {}
        inject(headers)
        flags = int(headers["traceparent"].rsplit("-", 1)[1], 16)
        assert flags & 0x01 == 0  # the W3C "sampled" bit


def test_sampled_traces_are_exported_once() -> None:
    """A sampled trace goes straight through, not through promotion, exactly once."""
    exporter = InMemorySpanExporter()
    cfg = new_config(
        "promo", "1", span_exporter=exporter, error_promotion=True, max_sampling_rate=1e6
    )
    tracer = cfg.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        assert root.get_span_context().trace_flags.sampled
        root.record_exception(ValueError("x"))
    assert cfg.force_flush(5)
    assert [s.name for s in exporter.get_finished_spans()] == ["root"]
    assert cfg.error_promotion is not None
    assert cfg.error_promotion.stats().promoted_traces == 0
    cfg.shutdown(2)


def test_late_child_of_promoted_trace_is_exported(setup: Setup) -> None:
    """A span ending after its promoted root is exported; one of a discarded trace is not."""
    with setup.tracer.start_as_current_span("root") as root:
        late = setup.tracer.start_span("late")
        root.set_status(StatusCode.ERROR)
    late.end()
    assert sorted(s.name for s in setup.exported()) == ["late", "root"]
    setup.exporter.clear()
    with setup.tracer.start_as_current_span("root2"):
        late2 = setup.tracer.start_span("late2")
    late2.end()
    assert setup.exported() == []


def test_remote_unsampled_parent_is_recorded_and_promoted(setup: Setup) -> None:
    """An entry span under an unsampled remote parent is recorded and exported on error."""
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    ctx = TraceContextTextMapPropagator().extract({"traceparent": parent})
    token = context.attach(ctx)
    try:
        with setup.tracer.start_as_current_span("server", kind=trace.SpanKind.SERVER) as span:
            assert span.is_recording()
            span.set_status(StatusCode.ERROR)
    finally:
        context.detach(token)
    (server,) = setup.exported()
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"


def test_child_of_non_recording_parent_is_dropped(setup: Setup) -> None:
    """Under a local parent that is not recording, children are not recorded."""
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(1, 2, False)))
    span = setup.tracer.start_span("child", context=ctx)
    assert not span.is_recording()


def test_memory_is_bounded_by_held_traces() -> None:
    """Past max_traces the oldest held trace is dropped, counted, and logged once."""
    exporter = InMemorySpanExporter()
    processor = ErrorPromotionProcessor(SimpleSpanProcessor(exporter), max_traces=3, max_spans=100)
    provider = _unsampled_provider(processor)
    tracer = provider.get_tracer("t")
    import structlog

    with structlog.testing.capture_logs() as logs:
        roots = [tracer.start_span(f"root{i}") for i in range(10)]
    stats = processor.stats()
    assert (stats.held_traces, stats.evicted_traces) == (3, 7)
    assert [e["event"] for e in logs] == ["otel.error_promotion.evicted"]
    for root in roots:
        root.set_status(StatusCode.ERROR)
        root.end()
    # Only the three traces still held can be promoted; the others' roots are counted.
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["root7", "root8", "root9"]
    assert processor.stats().evicted_spans == 7


def test_memory_is_bounded_by_held_spans() -> None:
    """A trace holding more than max_spans ended spans is dropped whole."""
    exporter = InMemorySpanExporter()
    processor = ErrorPromotionProcessor(SimpleSpanProcessor(exporter), max_traces=10, max_spans=50)
    tracer = _unsampled_provider(processor).get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        for _ in range(100):
            tracer.start_span("child").end()
        root.set_status(StatusCode.ERROR)
    stats = processor.stats()
    assert stats.evicted_traces == 1
    assert stats.evicted_spans == 101  # every span of it: 51 held, 49 children and the root after
    assert stats.held_spans == 0
    assert exporter.get_finished_spans() == ()


def test_invalid_caps_raise_value_error() -> None:
    """Non-positive caps are rejected, naming the option."""
    exporter = SimpleSpanProcessor(InMemorySpanExporter())
    with pytest.raises(ValueError, match="max_traces"):
        ErrorPromotionProcessor(exporter, max_traces=0)
    with pytest.raises(ValueError, match="max_spans"):
        ErrorPromotionProcessor(exporter, max_spans=-1)


def _unsampled_provider(processor: ErrorPromotionProcessor) -> TracerProvider:
    provider = TracerProvider(
        sampler=RecordDropped(ParentBased(ALWAYS_OFF)), shutdown_on_exit=False
    )
    provider.add_span_processor(processor)
    return provider


def test_operator_sampler_still_feeds_error_promotion(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_SAMPLER=always_off with error promotion: a failing trace is still exported."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    cfg = new_config("promo", "1", span_exporter=exporter, error_promotion=True)
    assert cfg.sampler is None  # the operator's sampler replaced the adaptive one
    tracer = cfg.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("ok"):
        pass
    with tracer.start_as_current_span("failing") as span:
        span.set_status(StatusCode.ERROR)
    assert cfg.force_flush(5)
    assert [s.name for s in exporter.get_finished_spans()] == ["failing"]
    cfg.shutdown(1)


def _remote_parent(span_id: int = 0xB7AD6B7169203331) -> context.Context:
    remote = trace.SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C, span_id, is_remote=True, trace_flags=trace.TraceFlags(0)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote))


def _two_calls_under_one_parent(provider: TracerProvider) -> None:
    # A server span that fails, then the client's retry under the same parent, which succeeds.
    tracer = provider.get_tracer("retry")
    with tracer.start_as_current_span("attempt-1", context=_remote_parent()) as first:
        with tracer.start_as_current_span("db"):
            pass
        first.set_status(StatusCode.ERROR, "unavailable")
    with (
        tracer.start_as_current_span("attempt-2", context=_remote_parent()),
        tracer.start_as_current_span("db"),
    ):
        pass


def test_an_entry_starting_after_its_trace_was_promoted_is_exported_as_always_on_would() -> None:
    """A local entry span that starts after its trace was promoted (a retry under the same
    remote parent) is exported with its children, as under ALWAYS_ON, and the trace is
    promoted once."""
    always_on_exporter = InMemorySpanExporter()
    always_on = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    always_on.add_span_processor(SimpleSpanProcessor(always_on_exporter))
    _two_calls_under_one_parent(always_on)

    exporter = InMemorySpanExporter()
    processor = ErrorPromotionProcessor(SimpleSpanProcessor(exporter))
    promoted = _unsampled_provider(processor)
    _two_calls_under_one_parent(promoted)

    assert sorted(s.name for s in exporter.get_finished_spans()) == sorted(
        s.name for s in always_on_exporter.get_finished_spans()
    )
    assert len(exporter.get_finished_spans()) == 4
    stats = processor.stats()
    assert (stats.promoted_traces, stats.discarded_traces, stats.held_traces) == (1, 0, 0)


def test_shutdown_exports_the_ended_spans_of_an_open_trace_in_error() -> None:
    """At shutdown, a trace whose entry span is still open is decided on the spans it has
    ended: a failed child is exported (as a sampled trace's ended spans are), a trace
    without error is not."""
    exporter = InMemorySpanExporter()
    processor = ErrorPromotionProcessor(SimpleSpanProcessor(exporter))
    provider = _unsampled_provider(processor)
    tracer = provider.get_tracer("shutdown")
    failing = tracer.start_span("request", context=context.Context())
    child = tracer.start_span("db", context=trace.set_span_in_context(failing))
    child.set_status(StatusCode.ERROR, "down")
    child.end()
    quiet = tracer.start_span("other", context=context.Context())
    tracer.start_span("ok", context=trace.set_span_in_context(quiet)).end()

    provider.shutdown()

    (db,) = exporter.get_finished_spans()
    assert db.name == "db"
    assert db.context.trace_flags.sampled
    stats = processor.stats()
    assert (stats.promoted_traces, stats.held_traces, stats.held_spans) == (1, 0, 0)
    failing.end()
    quiet.end()
