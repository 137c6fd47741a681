"""Request ids: reuse a well-formed incoming ``X-Request-Id``, else make a short one.

The incoming header is untrusted input: it is reused only when it is short and made of
characters that cannot break a log line, a header or a metadata value; anything else is
replaced by a fresh id.
"""

from __future__ import annotations

import binascii
import os
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
# A generator of clue's own, seeded from the system: an application that seeds the global
# one (for reproducible tests, say) must not make request ids repeat.
_random = random.Random()  # noqa: S311 - ids correlate lines, they are not secrets
_bits = _random.getrandbits

# Ids made ahead, a batch at a time: one random draw and one encoding for _BATCH ids,
# so a request takes one with a list pop (list operations are atomic between threads).
_BATCH = 64
_made: list[str] = []


def new_request_id() -> str:
    """Return a short random id: 8 URL-safe characters (48 random bits).

    Request ids correlate log lines; they are not secrets, so the fast non-cryptographic
    generator is enough.
    """
    try:
        return _made.pop()
    except IndexError:
        return _make_batch()


def _make_batch() -> str:
    # 48 bits are 6 bytes, exactly 8 base64 characters: the text cut every 8 characters
    # gives _BATCH independent ids.
    raw = _bits(48 * _BATCH).to_bytes(6 * _BATCH, "big")
    text = _b2a(raw, newline=False).translate(_URLSAFE).decode("ascii")
    _made.extend([text[i : i + 8] for i in range(8, 8 * _BATCH, 8)])
    return text[:8]


def _after_fork() -> None:
    # A forked child must not hand out the ids its parent made ahead (the parent will),
    # nor draw the ones its parent will draw next.
    _made.clear()
    _random.seed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


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
