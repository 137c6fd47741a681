"""Generator corner cases: import name clashes, module imports, metaclasses, PEP 695."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from clue.mock import GenerationError, generate

CLASH = {
    "a.py": """\
from typing import Protocol


class Item: ...


class Base(Protocol):
    def get(self) -> Item: ...
""",
    "b.py": """\
class Item: ...
""",
    "svc.py": """\
import abc
import typing
from typing import Protocol

from app.a import Base
from app.b import Item


class Svc(Base, Protocol):
    def put(self, item: Item, note: typing.Optional[str] = None) -> None: ...


class Meta(metaclass=abc.ABCMeta):
    @abc.abstractmethod
    def run(self) -> int: ...
""",
}


def _write(root: Path, files: dict[str, str]) -> None:
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    for name, text in files.items():
        (root / "app" / name).write_text(text)


def test_clashing_imports_get_distinct_names_and_type_check(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """Two ``Item`` classes from two modules are both imported; the later one is aliased."""
    _write(tmp_path, CLASH)
    files = generate([tmp_path / "app" / "svc.py"])
    text = files[tmp_path / "app" / "mocks" / "svc.py"]
    assert "from app.b import Item\n" in text
    assert "from app.a import Item as _Item\n" in text
    assert "import typing\n" in text
    assert "    def put(self, item: Item, note: typing.Optional[str] = None) -> None:" in text
    assert "    def get(self) -> _Item:" in text
    assert "class MetaMock(Meta):" in text
    status, output = run_mypy(tmp_path, "app")
    assert status == 0, output


def test_pep695_generics(tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]) -> None:
    """``class Box[T]`` and ``def m[U]`` are kept on 3.12+; 3.11 cannot parse them and says so."""
    _write(
        tmp_path,
        {
            "box.py": """\
from typing import Protocol


class Box[T](Protocol):
    def get(self) -> T: ...

    def put[U: int](self, item: T, extra: U) -> U: ...
"""
        },
    )
    if sys.version_info < (3, 12):
        with pytest.raises(GenerationError, match=r"cannot parse .*box\.py:4: "):
            generate([tmp_path / "app"])
        return
    text = generate([tmp_path / "app"])[tmp_path / "app" / "mocks" / "box.py"]
    assert "class BoxMock[T](Box[T]):" in text
    assert "    def put[U: int](self, item: T, extra: U) -> U:" in text
    assert "    def add_put[U: int](self, fn: Callable[[T, U], U]) -> None:" in text
    status, output = run_mypy(tmp_path, "app")
    assert status == 0, output


def test_pep695_base_parameters_take_the_subclass_arguments(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """``class Users(Repo[int], Protocol)`` over ``class Repo[K]`` (and ``class Batch[T,
    *Ts]``) flattens ``get(self, key: int)`` in, as with ``TypeVar`` generics; 3.11 cannot
    parse the source and says so."""
    _write(
        tmp_path,
        {
            "repo.py": """\
from typing import Protocol


class Repo[K](Protocol):
    def get(self, key: K) -> None: ...


class Users(Repo[int], Protocol):
    def first(self) -> int: ...


class Batch[T, *Ts](Protocol):
    def items(self, first: T) -> tuple[*Ts]: ...


class Pair(Batch[bytes, int, str], Protocol): ...
"""
        },
    )
    if sys.version_info < (3, 12):
        with pytest.raises(GenerationError, match=r"cannot parse .*repo\.py:4: "):
            generate([tmp_path / "app"])
        return
    text = generate([tmp_path / "app"])[tmp_path / "app" / "mocks" / "repo.py"]
    assert "    def get(self, key: int) -> None:" in text
    assert "    def items(self, first: bytes) -> tuple[*tuple[int, str],]:" in text
    status, output = run_mypy(tmp_path, "app")
    assert status == 0, output


def test_star_imported_bases_and_names_are_followed(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """``from app.base import *`` binds what the import system binds (``__all__``, else the
    public names): a base interface and an annotation from there are found, so the mock
    implements the inherited members and passes ``mypy --strict``."""
    _write(
        tmp_path,
        {
            "base.py": """\
from typing import Protocol

__all__ = ["Named", "Item"]


class Item: ...


class Named(Protocol):
    def name(self) -> str: ...
""",
            "svc.py": """\
from typing import Protocol

from app.base import *


class Store(Named, Protocol):
    def get(self, key: str) -> Item: ...
""",
        },
    )
    text = generate([tmp_path / "app" / "svc.py"])[tmp_path / "app" / "mocks" / "svc.py"]
    assert "    def name(self) -> str:" in text
    assert "from app.base import Item" in text
    (tmp_path / "use.py").write_text(
        "from app.mocks.svc import StoreMock\n\nStoreMock().add_name(lambda: 'ann')\n"
    )
    status, output = run_mypy(tmp_path, "app", "use.py")
    assert status == 0, output


def test_names_from_the_interface_body_are_qualified(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """A nested class used unqualified in the interface becomes ``Interface.Nested``."""
    _write(
        tmp_path,
        {
            "jobs.py": """\
import abc
import enum
from typing import Protocol


class Jobs(abc.ABC):
    class Status(enum.Enum):
        OK = "ok"

    @abc.abstractmethod
    def status(self, job: str) -> Status: ...


class Queue(Protocol):
    class Item:
        pass

    def pop(self) -> "Item": ...


class MoreJobs(Jobs):
    @abc.abstractmethod
    def run(self, status: "Jobs.Status") -> None: ...
"""
        },
    )
    text = generate([tmp_path / "app"])[tmp_path / "app" / "mocks" / "jobs.py"]
    assert text.count("    def status(self, job: str) -> Jobs.Status:") == 2
    assert '    def pop(self) -> "Queue.Item":' in text
    assert '    def run(self, status: "Jobs.Status") -> None:' in text
    status, output = run_mypy(tmp_path, "app")
    assert status == 0, output


def test_unmockable_member_is_a_clear_error(tmp_path: Path) -> None:
    """A property setter without its getter is reported with the file and the member."""
    _write(
        tmp_path,
        {
            "odd.py": """\
from typing import Protocol


class Odd(Protocol):
    @name.setter
    def name(self, value: str) -> None: ...
"""
        },
    )
    with pytest.raises(GenerationError) as info:
        generate([tmp_path / "app"])
    assert str(info.value) == (
        f"{tmp_path / 'app' / 'odd.py'}:6: cannot mock 'Odd.name': "
        "a property setter without a getter"
    )


def test_redefinition_wins_like_in_python(tmp_path: Path) -> None:
    """When a method is defined twice, the mock follows the last definition."""
    _write(
        tmp_path,
        {
            "twice.py": """\
from typing import Protocol


class Twice(Protocol):
    def run(self, old: int) -> int: ...

    def run(self, new: str) -> str: ...
"""
        },
    )
    text = generate([tmp_path / "app"])[tmp_path / "app" / "mocks" / "twice.py"]
    assert "    def run(self, new: str) -> str:" in text
    assert "old" not in text


def test_typing_extensions_and_aliased_markers(tmp_path: Path) -> None:
    """``typing_extensions.Protocol`` and aliased ``typing``/``abc`` imports are recognised."""
    _write(
        tmp_path,
        {
            "ext.py": """\
import abc as a
import typing as t

import typing_extensions


class One(typing_extensions.Protocol):
    def one(self) -> int: ...


class Two(t.Protocol):
    def two(self) -> int: ...


class Three(a.ABC):
    @a.abstractmethod
    def three(self) -> int: ...
"""
        },
    )
    text = generate([tmp_path / "app"])[tmp_path / "app" / "mocks" / "ext.py"]
    for name in ("One", "Two", "Three"):
        assert f"class {name}Mock({name}):" in text
