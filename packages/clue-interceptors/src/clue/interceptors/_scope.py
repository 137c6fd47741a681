"""Attaching a message's context while it is handled, and detaching it safely.

A receive helper attaches each message's context and detaches it when the next
message is asked for. Detaching must happen in the very ``contextvars`` context that
attached (otherwise OpenTelemetry's ``detach`` fails and logs an error): a stream
abandoned by a cancelled RPC may be finalized from anywhere, so an attachment
remembers a marker and is only detached where that marker is current.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from opentelemetry import context as otel_context

__all__ = ["Attachment", "attach", "detach"]

_MARKER: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "clue.interceptors.attachment", default=None
)


@dataclass(frozen=True, slots=True)
class Attachment:
    """What :func:`detach` needs to undo one :func:`attach`."""

    token: contextvars.Token[otel_context.Context]
    marker_token: contextvars.Token[object | None]
    marker: object = field(default_factory=object)


def attach(ctx: otel_context.Context) -> Attachment:
    """Make ``ctx`` the current OpenTelemetry context."""
    marker = object()
    marker_token = _MARKER.set(marker)
    return Attachment(otel_context.attach(ctx), marker_token, marker)


def detach(attachment: Attachment) -> None:
    """Restore the context current before :func:`attach`, if this is where it ran."""
    if _MARKER.get() is not attachment.marker:
        # Finalized from another context: the attaching one is gone with its stream.
        return
    otel_context.detach(attachment.token)
    _MARKER.reset(attachment.marker_token)
