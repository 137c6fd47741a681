"""The README's way of handling messages read with grpc.aio's ``context.read()`` works,
and ``read()`` alone does not make a message's trace context current."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from chatpb import chat_pb2, chat_pb2_grpc
from opentelemetry import trace

README = Path(__file__).parent.parent / "README.md"


def _readme_servicer(tracer: trace.Tracer) -> Any:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    (code,) = [b for b in blocks if "class ReadWriteChat" in b]
    namespace: dict[str, Any] = {
        "__name__": "readme",
        "grpc": grpc,
        "chat_pb2": chat_pb2,
        "chat_pb2_grpc": chat_pb2_grpc,
        "tracer": tracer,
    }
    exec(compile(code, str(README), "exec"), namespace)  # the README's own code
    return namespace["ReadWriteChat"]()


class ReadOnly(chat_pb2_grpc.ChatServicer):
    """Calls read() and nothing else: what is current afterwards?"""

    async def Talk(self, request_iterator: Any, context: Any) -> Any:
        while (note := await context.read()) is not grpc.aio.EOF:
            current = trace.get_current_span().get_span_context().trace_id
            yield chat_pb2.Note(text=note.text, seen_trace_id=f"{current:032x}")


async def _talk(aio_server: Any, aio_stub: Any, servicer: Any, tracer: trace.Tracer) -> Any:
    _, address = await aio_server(servicer)
    sent: list[str] = []

    async def notes() -> Any:
        for text in ("a", "b", "c"):
            with tracer.start_as_current_span("send note") as span:
                sent.append(f"{span.get_span_context().trace_id:032x}")
                yield chat_pb2.Note(text=text)

    replies = [reply async for reply in aio_stub(address).Talk(notes())]
    return sent, replies


async def test_the_readme_read_write_handler_runs_each_message_in_its_trace(
    aio_server: Any, aio_stub: Any, tracer: trace.Tracer, exporter: Any
) -> None:
    """With the README's attach/detach, each message is handled, and its reply stamped,
    in the trace its sender was in."""
    sent, replies = await _talk(aio_server, aio_stub, _readme_servicer(tracer), tracer)
    assert [r.text for r in replies] == ["A", "B", "C"]
    handled = [s for s in exporter.get_finished_spans() if s.name == "handle note"]
    assert [f"{s.context.trace_id:032x}" for s in handled] == sent
    assert [r.trace_metadata["traceparent"].split("-")[1] for r in replies] == sent
    assert len(set(sent)) == 3


async def test_read_alone_does_not_attach_the_message_context(
    aio_server: Any, aio_stub: Any, tracer: trace.Tracer
) -> None:
    """After a bare ``await context.read()`` no message's trace is current."""
    sent, replies = await _talk(aio_server, aio_stub, ReadOnly(), tracer)
    assert [r.text for r in replies] == ["a", "b", "c"]
    assert not {r.seen_trace_id for r in replies} & set(sent)
