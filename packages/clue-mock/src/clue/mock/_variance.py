"""Variance of type variables in a callback signature, for generic callback protocols.

mypy requires a Protocol's type variables to be declared with the variance their use
implies. Annotations are walked with a polarity (+1 covariant, -1 contravariant, 0
invariant) through the standard generic types whose variance is known; a type variable
inside anything else (a user generic, ``list``...) is reported as unknown, and the caller
falls back to a less precise type.
"""

from __future__ import annotations

import ast
import contextlib
import copy

from clue.mock._literals import string_literal

__all__ = ["substitute", "variances"]

_COVARIANT = frozenset(
    {
        "Sequence", "Iterable", "Iterator", "AsyncIterator", "AsyncIterable", "Awaitable",
        "Collection", "Reversible", "AbstractSet", "KeysView", "ValuesView", "frozenset",
        "tuple", "Tuple", "type", "Type", "Optional", "Union", "FrozenSet",
    }
)  # fmt: skip


class _UnknownVarianceError(Exception):
    pass


def variances(annotations: list[tuple[str, int]], params: set[str]) -> dict[str, int] | None:
    """The variance of each of ``params`` used in ``(annotation, polarity)`` pairs.

    Returns ``None`` when a parameter appears where its variance is not known.
    """
    seen: dict[str, set[int]] = {}
    try:
        for text, polarity in annotations:
            _walk(ast.parse(text, mode="eval").body, polarity, params, seen)
    except (_UnknownVarianceError, SyntaxError):
        return None
    return {name: next(iter(p)) if len(p) == 1 else 0 for name, p in seen.items()}


def substitute(text: str, mapping: dict[str, str]) -> str:
    """``text`` (an annotation) with the names in ``mapping`` replaced, in strings too."""
    return ast.unparse(_replace(ast.parse(text, mode="eval").body, mapping))


def _walk(node: ast.expr, polarity: int, params: set[str], seen: dict[str, set[int]]) -> None:
    if isinstance(node, ast.Name):
        if node.id in params:
            seen.setdefault(node.id, set()).add(polarity)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            with contextlib.suppress(SyntaxError):
                _walk(ast.parse(node.value, mode="eval").body, polarity, params, seen)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        _walk(node.left, polarity, params, seen)
        _walk(node.right, polarity, params, seen)
    elif isinstance(node, ast.Subscript):
        _subscript(node, polarity, params, seen)
    elif isinstance(node, ast.Attribute):
        pass  # ``module.Name``: not a type variable of the class
    elif any(isinstance(n, ast.Name) and n.id in params for n in ast.walk(node)):
        raise _UnknownVarianceError


def _subscript(
    node: ast.Subscript, polarity: int, params: set[str], seen: dict[str, set[int]]
) -> None:
    base = _base(node)
    args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    if base == "Literal":
        return
    if base == "Annotated":
        _walk(args[0], polarity, params, seen)
    elif base in _COVARIANT:
        for arg in args:
            _walk(arg, polarity, params, seen)
    elif base in {"Mapping", "Callable"} and len(args) == 2:
        first, last = args
        if base == "Mapping":
            _walk(first, 0, params, seen)
        elif isinstance(first, ast.List):
            for arg in first.elts:
                _walk(arg, -polarity, params, seen)
        _walk(last, polarity, params, seen)
    elif any(isinstance(n, ast.Name) and n.id in params for n in ast.walk(node)):
        raise _UnknownVarianceError  # a generic whose variance we do not know


def _replace(node: ast.AST, mapping: dict[str, str]) -> ast.expr:
    # A copy of ``node`` with names replaced; string literals keep double quotes and
    # forward references are rewritten inside (``Literal[...]`` values are left alone).
    if isinstance(node, ast.Name):
        return ast.Name(id=mapping.get(node.id, node.id))
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            inner = ast.unparse(_replace(ast.parse(node.value, mode="eval").body, mapping))
        except SyntaxError:
            return ast.Name(id=string_literal(node.value))
        return ast.Name(id=string_literal(inner))
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        return ast.Name(id=string_literal(node.value))
    if isinstance(node, ast.Subscript) and _base(node) == "Literal":
        return ast.Subscript(value=_replace(node.value, mapping), slice=_literal(node.slice))
    new = copy.copy(node)
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            setattr(new, name, _replace(value, mapping))
        elif isinstance(value, list):
            setattr(
                new, name, [_replace(v, mapping) if isinstance(v, ast.AST) else v for v in value]
            )
    return new  # type: ignore[return-value]  # a copy of an expr is an expr


def _literal(node: ast.expr) -> ast.expr:
    # Literal values: strings re-quoted, nothing substituted.
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return ast.Name(id=string_literal(node.value))
    if isinstance(node, ast.Tuple):
        return ast.Tuple(elts=[_literal(e) for e in node.elts])
    return node


def _base(node: ast.Subscript) -> str:
    value = node.value
    if isinstance(value, ast.Attribute):
        return value.attr
    return value.id if isinstance(value, ast.Name) else ""
