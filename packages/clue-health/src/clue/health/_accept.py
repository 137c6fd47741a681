"""``Accept`` header negotiation (RFC 9110 §12.5.1) for the health endpoints."""

from __future__ import annotations

import re
from collections.abc import Sequence

JSON = "application/json"
XML = "application/xml"
TEXT_XML = "text/xml"
OFFERS = (JSON, XML, TEXT_XML)

# Headers are untrusted: only this much of one is read.
_MAX_HEADER = 4096
_MAX_RANGES = 64
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")


def negotiate(accept: str | None, offers: Sequence[str] = OFFERS) -> str:
    """Return the offer the client prefers; the first offer when it states no preference.

    Each offer gets the quality of the most specific media range that matches it
    (``application/json`` over ``application/*`` over ``*/*``); ties go to the earlier
    offer. A header that accepts none of the offers, or cannot be read, gets the first
    offer anyway: a health probe must not fail over content negotiation.

    Example:
        >>> negotiate("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        'application/xml'
        >>> negotiate("application/json, application/xml;q=0.5")
        'application/json'
    """
    if not accept:
        return offers[0]
    ranges = _parse(accept[:_MAX_HEADER])
    best, best_q = offers[0], 0.0
    for offer in offers:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    return best


def _parse(header: str) -> list[tuple[str, str, float]]:
    """Media ranges as ``(type, subtype, q)``; malformed ones are skipped."""
    ranges: list[tuple[str, str, float]] = []
    for item in header.split(",")[:_MAX_RANGES]:
        media, *params = item.split(";")
        kind, sep, sub = media.strip().lower().partition("/")
        if not sep or not _TOKEN.match(kind) or not _TOKEN.match(sub):
            continue
        if kind == "*" and sub != "*":
            continue
        q = 1.0
        for param in params:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.match(value) else -1.0
                break
        if q >= 0:
            ranges.append((kind, sub, q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, str, float]]) -> float:
    kind, _, sub = offer.partition("/")
    best_specificity, quality = 0, 0.0
    for r_kind, r_sub, q in ranges:
        if r_kind == kind and r_sub == sub:
            specificity = 3
        elif r_kind == kind and r_sub == "*":
            specificity = 2
        elif r_kind == "*":
            specificity = 1
        else:
            continue
        if specificity > best_specificity:
            best_specificity, quality = specificity, q
    return quality
