"""Request ids: reuse a well-formed incoming ``X-Request-Id``, else make a short one.

The incoming header is untrusted input: it is reused only when it is short and made of
characters that cannot break a log line, a header or a metadata value; anything else is
replaced by a fresh id.
"""

from __future__ import annotations

import binascii
import random
import re

__all__ = ["REQUEST_ID_HEADER", "new_request_id", "request_id_from"]

#: The HTTP header (and gRPC metadata key, lower-cased) carrying the request id.
REQUEST_ID_HEADER = "X-Request-Id"

#: Longest incoming request id that is reused as is.
MAX_REQUEST_ID_LENGTH = 128

# Letters, digits and the punctuation of UUIDs, base64 and common tracing ids.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,%d}" % MAX_REQUEST_ID_LENGTH)  # noqa: UP031


_b2a = binascii.b2a_base64
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_bits = random.getrandbits


def new_request_id() -> str:
    """Return a short random id: 8 URL-safe characters (48 random bits).

    Request ids correlate log lines; they are not secrets, so the fast non-cryptographic
    generator is enough.
    """
    return _b2a(_bits(48).to_bytes(6, "big"), newline=False).translate(_URLSAFE).decode("ascii")


def request_id_from(incoming: str | bytes | None) -> str:
    """Return ``incoming`` when it is a well-formed request id, else a new one.

    Args:
        incoming: the raw header or metadata value, if any.

    Returns:
        The id to bind for the request and to send back.
    """
    if incoming:
        if isinstance(incoming, bytes):
            try:
                incoming = incoming.decode("ascii")
            except UnicodeDecodeError:
                return new_request_id()
        if _SAFE_ID.fullmatch(incoming):
            return incoming
    return new_request_id()
