"""Health reports as JSON, XML and Kubernetes' plain-text check list."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable

from clue.health._health import OK, Health

# Characters XML 1.0 cannot carry at all, even escaped (controls, surrogates, U+FFFE/F).
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


def to_json(health: Health) -> bytes:
    """``{"uptime":3600,"version":"abc123","status":{"postgresql":"OK"}}``."""
    doc = {"uptime": health.uptime, "version": health.version, "status": dict(health.status)}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def to_xml(health: Health) -> bytes:
    """The same report under ``<health>``; each dependency is ``<dependency name="...">``.

    Dependency names are attribute values, never element names, so any name gives
    well-formed XML; characters XML cannot carry become U+FFFD.
    """
    deps = "".join(
        f'<dependency name="{_xml(name)}">{_xml(status)}</dependency>'
        for name, status in health.status.items()
    )
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<health><uptime>{health.uptime}</uptime><version>{_xml(health.version)}</version>"
        f"<status>{deps}</status></health>\n"
    )
    return doc.encode("utf-8")


def check_lines(checks: Iterable[tuple[str, bool | None]]) -> list[str]:
    """Kubernetes' per-check lines: ``[+]name ok``, ``[-]name failed: reason withheld``.

    ``None`` marks an excluded check (``[+]name excluded: ok``).
    """
    lines = []
    for name, ok in checks:
        safe = text_safe(name)
        if ok is None:
            lines.append(f"[+]{safe} excluded: ok")
        elif ok:
            lines.append(f"[+]{safe} ok")
        else:
            lines.append(f"[-]{safe} failed: reason withheld")
    return lines


def statuses(health: Health) -> list[tuple[str, bool]]:
    """``(name, healthy)`` pairs of a report."""
    return [(name, status == OK) for name, status in health.status.items()]


def text_safe(value: str) -> str:
    """``value`` on one line: controls, line separators and surrogates are escaped."""
    if value.isprintable():
        return value
    return "".join(
        _escape(c) if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in value
    )


def _escape(char: str) -> str:
    code = ord(char)
    if unicodedata.category(char) == "Zs":
        return char  # ordinary spaces stay readable
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _xml(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value).translate(_XML_ESCAPES)
