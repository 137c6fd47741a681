"""String and bytes literals the way ruff writes them (double quotes when possible)."""

from __future__ import annotations

__all__ = ["string_literal"]


def string_literal(value: str | bytes) -> str:
    """``repr(value)`` with double quotes when possible (ruff's preferred quotes)."""
    text = repr(value)
    prefix = "b" if isinstance(value, bytes) else ""
    body = text[len(prefix) :]
    has_double = (b'"' in value) if isinstance(value, bytes) else ('"' in value)
    if body.startswith("'") and not has_double:
        return f'{prefix}"{body[1:-1]}"'
    return text
