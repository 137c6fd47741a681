"""Line layout the way ruff and black lay code out, for the few shapes mocks contain.

A bracketed list that does not fit in 88 columns is exploded one item per line with a
trailing comma (the "magic trailing comma" both tools keep). An item still too long is
split at its last bracket pair ("right-hand split"): the contents go on their own line
if they fit, else they are exploded the same way, recursively.
"""

from __future__ import annotations

import io
import itertools
import tokenize

__all__ = ["LINE", "split", "wrap"]

LINE = 88  # ruff's and black's default: generated files fit any project's setting
_OPEN = {"(": ")", "[": "]", "{": "}"}


def wrap(start: str, items: list[str], end: str) -> list[str]:
    """``start + ", ".join(items) + end`` on one line if it fits, else exploded."""
    one = f"{start}{', '.join(items)}{end}"
    if len(one) <= LINE:
        return [one]
    width = len(start) - len(start.lstrip())
    lines = [start]
    for item in items:
        lines.extend(_split(item, width + 4, ","))
    # ``) -> Return[...]:`` may still be too long: its annotation is split like an item.
    suffix = next((s for s in (": ...", ":") if end.endswith(s)), "")
    lines.extend(_split(end.removesuffix(suffix), width, suffix) if suffix else [" " * width + end])
    return lines


def split(text: str, indent: int) -> list[str]:
    """``text`` at ``indent``, split at its last bracket pair while it is too long."""
    return _split(text, indent, "")


def _split(item: str, indent: int, suffix: str) -> list[str]:
    pad = " " * indent
    if indent + len(item) + len(suffix) <= LINE:
        return [f"{pad}{item}{suffix}"]
    pair = _last_pair(item)
    if pair is None:
        return [f"{pad}{item}{suffix}"]  # nothing to split at: left long, as the tools do
    opening, closing = pair
    head, body, tail = item[: opening + 1], item[opening + 1 : closing], item[closing:]
    if not body.strip():
        return [f"{pad}{item}{suffix}"]
    elements = _top_level_elements(body)
    if indent + 4 + len(body) <= LINE or len(elements) == 1:
        inner = _split(body, indent + 4, "")
    else:
        inner = [line for element in elements for line in _split(element, indent + 4, ",")]
    return [f"{pad}{head}", *inner, f"{pad}{tail}{suffix}"]


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return []


def _last_pair(text: str) -> tuple[int, int] | None:
    # The bracket pair that closes last in ``text`` (brackets in strings do not count),
    # if ``text`` ends with it.
    # Leading closers (the ``)`` of ``) -> Return[...]``) are balanced for the tokenizer.
    closers = text[: len(text) - len(text.lstrip(")]}"))]
    shift = len(closers)
    openers = "".join({v: k for k, v in _OPEN.items()}[c] for c in reversed(closers))
    stack: list[int] = []
    last: tuple[int, int] | None = None
    for token in _tokens(openers + text):
        if token.type == tokenize.OP and token.string in _OPEN:
            stack.append(token.start[1] - shift)
        elif token.type == tokenize.OP and token.string in _OPEN.values() and stack:
            last = (stack.pop(), token.start[1] - shift)
    if last is None or text.rstrip()[-1:] not in _OPEN.values() or last[1] != len(text) - 1:
        return None
    return last


def _top_level_elements(body: str) -> list[str]:
    depth = 0
    cuts = [-1]
    for token in _tokens(body):
        if token.type != tokenize.OP:
            continue
        if token.string in _OPEN:
            depth += 1
        elif token.string in _OPEN.values():
            depth -= 1
        elif token.string == "," and depth == 0:
            cuts.append(token.start[1])
    cuts.append(len(body))
    parts = [body[a + 1 : b].strip() for a, b in itertools.pairwise(cuts)]
    return [p for p in parts if p]
