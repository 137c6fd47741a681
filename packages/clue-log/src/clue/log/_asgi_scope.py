"""What the ASGI middleware reads from a request's scope and from the server's messages."""

from __future__ import annotations

import os

from clue.log._types import Message, Scope, header_values


def file_bytes(message: Message, kind: str) -> int:
    """The bytes a ``pathsend`` or ``zerocopysend`` message sends of its file. Never raises.

    ``pathsend``: the whole file. ``zerocopysend``: ``count`` bytes from ``offset`` (the
    file's own position when there is none), at most to the file's end.
    """
    try:
        if kind == "http.response.pathsend":
            return os.stat(message["path"]).st_size
        file = message["file"]
        fd = file if type(file) is int else file.fileno()  # a file object or its number
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        left = os.fstat(fd).st_size - offset
        count = message.get("count")
        if count is not None and count < left:
            left = count
        return max(0, left)
    except Exception:  # a message the server will refuse: nothing sent
        return 0


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (any case), or None."""
    values = header_values(scope, name)
    return values[0] if values else None


def url(scope: Scope) -> str:
    """The request's path as sent, with its query string."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string")
    return f"{path}?{query.decode('latin-1')}" if query else path


def remote_addr(scope: Scope) -> str:
    """The client's ``host:port``, or an empty string."""
    client = scope.get("client")
    if not client:
        return ""
    return f"{client[0]}:{client[1]}"
