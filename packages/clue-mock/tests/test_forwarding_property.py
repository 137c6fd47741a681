"""Property: for any signature, the generated mock hands the fake exactly the call's arguments."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clue.mock import generate

_COUNTER = itertools.count()
# "result" and "fn" are the names the generated code would like for itself.
_NAMES = ["result", "fn", "a", "b", "c", "d", "e", "f"]


@dataclass
class _Case:
    posonly: int
    positional: list[tuple[str, bool]]  # (name, has default), posonly ones first
    vararg: bool
    kwonly: list[tuple[str, bool]]
    varkw: bool

    def source(self) -> str:
        items = ["self"]
        for i, (name, default) in enumerate(self.positional):
            items.append(f"{name}: int = {100 + i}" if default else f"{name}: int")
            if i == self.posonly - 1:
                items.append("/")
        if self.vararg:
            items.append("*rest: int")
        elif self.kwonly:
            items.append("*")
        for i, (name, default) in enumerate(self.kwonly):
            items.append(f"{name}: int = {200 + i}" if default else f"{name}: int")
        if self.varkw:
            items.append("**extra: int")
        params = ", ".join(items)
        return (
            "from typing import Protocol\n\n\nclass Api(Protocol):\n"
            f"    def m({params}) -> object: ...\n\n"
            f"    async def am({params}) -> object: ...\n"
        )


@st.composite
def _cases(draw: st.DrawFn) -> _Case:
    names = draw(st.permutations(_NAMES))
    n_positional = draw(st.integers(0, 4))
    n_kwonly = draw(st.integers(0, 3))
    first_default = draw(st.integers(0, n_positional))
    positional = [(names[i], i >= first_default) for i in range(n_positional)]
    kwonly = [(names[n_positional + i], draw(st.booleans())) for i in range(n_kwonly)]
    return _Case(
        posonly=draw(st.integers(0, n_positional)),
        positional=positional,
        vararg=draw(st.booleans()),
        kwonly=kwonly,
        varkw=draw(st.booleans()),
    )


@st.composite
def _calls(
    draw: st.DrawFn,
) -> tuple[_Case, tuple[Any, ...], dict[str, Any], tuple[Any, ...], dict[str, Any]]:
    case = draw(_cases())
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    expected_args: list[Any] = []
    expected_kwargs: dict[str, Any] = {}
    required_posonly = sum(
        1 for i, (_, d) in enumerate(case.positional) if i < case.posonly and not d
    )
    passed = draw(st.integers(required_posonly, len(case.positional)))
    for i, (name, default) in enumerate(case.positional):
        value = 1000 + i
        if i < passed:
            args.append(value)
        elif i >= case.posonly and (not default or draw(st.booleans())):
            kwargs[name] = value
        else:
            value = 100 + i
        expected_args.append(value)
    if case.vararg and passed == len(case.positional):
        extras = draw(st.lists(st.integers(), max_size=3))
        args.extend(extras)
        expected_args.extend(extras)
    for i, (name, default) in enumerate(case.kwonly):
        value = 2000 + i
        if not default or draw(st.booleans()):
            kwargs[name] = value
        else:
            value = 200 + i
        expected_kwargs[name] = value
    if case.varkw:
        extra = draw(
            st.dictionaries(st.sampled_from(["x0", "x1", "x2"]), st.integers(), max_size=3)
        )
        kwargs.update(extra)
        expected_kwargs.update(extra)
    return case, tuple(args), kwargs, tuple(expected_args), expected_kwargs


def _record(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


async def _arecord(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


@settings(max_examples=40, deadline=None)
@given(call=_calls())
def test_mock_forwards_exactly_what_it_receives(
    forget: Callable[[str], None],
    call: tuple[_Case, tuple[Any, ...], dict[str, Any], tuple[Any, ...], dict[str, Any]],
) -> None:
    """Sync and async methods pass positional, defaulted, variadic and keyword values on."""
    case, args, kwargs, expected_args, expected_kwargs = call
    package = f"hyp_pkg_{next(_COUNTER)}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
        (root / package / "api.py").write_text(case.source())
        generate([root / package / "api.py"])
        sys.path.insert(0, tmp)
        try:
            module = importlib.import_module(f"{package}.mocks.api")
            mock = module.ApiMock()
            mock.add_m(_record)
            mock.add_am(_arecord)
            assert mock.m(*args, **kwargs) == (expected_args, expected_kwargs)
            assert asyncio.run(mock.am(*args, **kwargs)) == (expected_args, expected_kwargs)
            assert not mock.has_more()
        finally:
            sys.path.remove(tmp)
            forget(package)
