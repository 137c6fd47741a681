"""clue.log: per-request log buffering on structlog."""

from __future__ import annotations

__all__: list[str] = []
