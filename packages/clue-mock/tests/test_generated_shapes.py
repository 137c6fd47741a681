"""Many signature shapes at once: the output is formatted, lint-clean and passes mypy --strict."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from clue.mock import generate
from clue.mock._literals import string_literal

# (annotation, a valid default or None)
_TYPES = [
    ("int", "0"),
    ("str | None", "None"),
    ("list[dict[str, int]]", None),
    ("tuple[int, ...]", "()"),
    ('"Item"', None),
    ("Callable[[int, str], Awaitable[bool]]", None),
    ("Mapping[str, Sequence[Item]]", None),
    ("Literal['a', 'b']", "'a'"),
    ("float", "1.5"),
    ("bytes", "b''"),
    ("Mapping[str, Sequence[Callable[[int, str, bytes, float, complex], Awaitable[bool]]]]", None),
]
_GENERIC = [("T", None), ("list[T] | None", "None"), ("Mapping[str, T]", None)]
_HEADER = """\
import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, Literal, Protocol, TypeVar

T = TypeVar("T")


class Item:
    pass
"""


def _name(rng: random.Random, long: bool) -> str:
    words = ["user", "order", "amount", "reference", "request", "deadline", "retries", "x"]
    if not long and rng.random() < 0.2:
        # Named like what annotations use: the mock's body must still see the types.
        return rng.choice(["Item", "T", "Mapping", "Literal", "Callable", "result"])
    return "_".join(rng.choice(words) for _ in range(rng.randint(3, 5) if long else 1))


def _method(rng: random.Random, name: str, generic: bool) -> str:
    types = _TYPES + _GENERIC if generic else _TYPES
    used: set[str] = {"self"}
    items = ["self"]

    def param(with_default: bool) -> str:
        pname = _name(rng, rng.random() < 0.3)
        while pname in used:
            pname += "_"
        used.add(pname)
        if with_default:
            annotation, default = rng.choice([t for t in types if t[1] is not None])
            return f"{pname}: {annotation} = {default}"
        return f"{pname}: {rng.choice(types)[0]}"

    positional = [param(False) for _ in range(rng.randint(0, 3))]
    positional += [param(True) for _ in range(rng.randint(0, 2))]
    if positional and rng.random() < 0.3:
        positional.insert(rng.randint(1, len(positional)), "/")
    items += positional
    if rng.random() < 0.3:
        items.append(f"*rest_{name}: {rng.choice(types)[0]}")
    kwonly = [param(rng.random() < 0.5) for _ in range(rng.randint(0, 2))]
    if kwonly and not items[-1].startswith("*"):
        items.append("*")
    items += kwonly
    if rng.random() < 0.3:
        items.append("**options: int")
    returns = rng.choice([*(t for t, _ in types), "None"])
    prefix = "async def" if rng.random() < 0.3 else "def"
    return f"    {prefix} {name}({', '.join(items)}) -> {returns}: ...\n"


def _module(rng: random.Random, index: int) -> str:
    parts = [_HEADER]
    for n in range(4):
        abc_ = rng.random() < 0.4
        generic = abc_ and rng.random() < 0.5  # ABCs: no protocol variance rules to satisfy
        base = ("abc.ABC, Generic[T]" if generic else "abc.ABC") if abc_ else "Protocol"
        parts.append(f"\n\nclass Api{index}x{n}({base}):\n")
        for m in range(rng.randint(1, 4)):
            if abc_:
                parts.append("    @abc.abstractmethod\n")
            parts.append(_method(rng, f"{_name(rng, rng.random() < 0.2)}_{m}", generic))
    return "".join(parts)


def test_random_shapes_are_formatted_and_type_check(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """Thirty-two seeded random interfaces generate formatted, lint-clean, type-correct mocks."""
    rng = random.Random(20261125)
    package = tmp_path / "shapes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for index in range(8):
        (package / f"api{index}.py").write_text(_module(rng, index))
    files = generate([package])
    assert len(files) == 9
    for content in files.values():
        compile(content, "<generated>", "exec")
    mocks = str(package / "mocks")
    ruff = [sys.executable, "-m", "ruff", "--quiet"]
    for command in (
        [*ruff, "format", "--isolated", "--check", "--diff", mocks],
        [*ruff, "check", "--isolated", "--select", "E,W,F,I", "--ignore", "E501", mocks],
    ):
        proc = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    status, output = run_mypy(tmp_path, "shapes")
    assert status == 0, output


@given(st.text() | st.binary())
def test_string_literals_round_trip(value: str | bytes) -> None:
    """Any str or bytes renders as a literal evaluating back to it, double-quoted if possible."""
    literal = string_literal(value)
    assert ast.literal_eval(literal) == value
    if isinstance(value, str) and '"' not in value:
        assert literal.startswith('"')
    if isinstance(value, bytes) and b'"' not in value:
        assert literal.startswith('b"')
