"""Interface shapes met in real libraries: each is mocked so that mypy and the runtime agree,
or refused with a message naming the file, the line and the member."""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clue.mock import GenerationError, UnexpectedCallError, generate

SHAPES = """\
import abc
import contextlib
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar, final

from typing_extensions import Self

KeyType = TypeVar("KeyType")
ValueType = TypeVar("ValueType")


class ARepositoryWhoseNameIsLongEnoughToWrap(abc.ABC, Generic[KeyType, ValueType]):
    @abc.abstractmethod
    def get(self, key: KeyType) -> ValueType: ...


class Cursor(Protocol):
    arraysize: int

    def __init__(self, dsn: str) -> None: ...

    def execute(self, sql: str, /) -> None: ...

    def __eq__(self, other: object) -> bool: ...

    def __setattr__(self, name: str, value: Any) -> None: ...

    def __getattr__(self, name: str) -> Any: ...


class Logger(Protocol):
    def bind(self, **new_values: Any) -> Self: ...

    def unbind(self, *keys: str) -> Self: ...


class Stock(Protocol):
    async def reserve(self, sku: str, qty: int, *reasons: str, **tags: str) -> bool: ...

    def release(self, sku: str, qty: int, *, note: str = "") -> None: ...


class Tracer(abc.ABC):
    @abc.abstractmethod
    def __init__(self, name: str) -> None: ...

    @contextlib.contextmanager
    @abc.abstractmethod
    def span(self, name: str) -> Iterator[int]: ...

    @final
    def version(self) -> str:
        return "1"

    @abc.abstractmethod
    def flush(self) -> None: ...
"""

# A fake for each helper, written the way a user naturally writes it: with the
# interface's own signature, or with parameters renamed where nothing forbids it.
USE = """\
from collections.abc import Iterator
from typing import Any

import pytest

from app.mocks.shapes import CursorMock, LoggerMock, StockMock, TracerMock


async def reserve(sku: str, qty: int, *reasons: str, **tags: str) -> bool:
    return qty > 0


def release(item: str, count: int, *, note: str) -> None:
    del item, count, note


def span(name: str) -> Iterator[int]:
    yield len(name)


def check(request: pytest.FixtureRequest) -> None:
    stock = StockMock(request)
    stock.add_reserve(reserve)
    stock.add_release(release)
    logger = LoggerMock(request)
    logger.add_bind(lambda **kw: logger)
    logger.add_unbind(lambda *keys: logger)
    cursor = CursorMock(request)
    cursor.add_arraysize(lambda: 5)
    cursor.add_arraysize_setter(lambda value: None)
    cursor.add_execute(lambda query: None)
    cursor.add_setattr(lambda name, value: None)
    tracer = TracerMock(request)
    tracer.add_span(span)
    tracer.set_flush(lambda: None)
    assert tracer.version() == "1"
    with tracer.span("x") as n:
        assert n == 1


@pytest.fixture
def other(cursor_mock: CursorMock, tracer_mock: TracerMock) -> Any:
    return cursor_mock, tracer_mock
"""


@pytest.fixture
def shapes(tmp_path: Path, forget: Callable[[str], None]) -> Iterator[Path]:
    """A package ``app`` holding the shapes module, importable while the test runs."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "shapes.py").write_text(SHAPES)
    sys.path.insert(0, str(tmp_path))
    forget("app")
    yield tmp_path
    sys.path.remove(str(tmp_path))
    forget("app")


def test_real_shapes_type_check_with_natural_fakes(
    shapes: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """Data attributes, dunders, ``Self``, ``**kwargs``, decorators and ``@final``: the
    ``--pytest`` mocks, their fixtures and fakes with the interface's signatures pass
    ``mypy --strict``."""
    generate([shapes / "app"], pytest=True)
    (shapes / "use.py").write_text(USE)
    status, output = run_mypy(shapes, "app", "use.py")
    assert status == 0, output


def test_real_shapes_at_run_time(shapes: Path) -> None:
    """The same mocks behave: every call goes through the mock, unexpected ones raise."""
    generate([shapes / "app"])
    module = importlib.import_module("app.mocks.shapes")
    cursor = module.CursorMock()
    with pytest.raises(UnexpectedCallError, match=r"CursorMock\.__setattr__\('rows', 3\)"):
        cursor.rows = 3
    cursor.add_setattr(lambda name, value: None)
    cursor.rows = 3
    cursor.set_arraysize(lambda: 7)
    assert cursor.arraysize == 7
    cursor.add_arraysize_setter(lambda value: None)
    # The interface's __setattr__ takes every assignment, properties included, as in Python.
    with pytest.raises(UnexpectedCallError, match=r"CursorMock\.__setattr__\('arraysize', 1\)"):
        cursor.arraysize = 1
    with pytest.raises(UnexpectedCallError, match=r"CursorMock\.__eq__"):
        _ = cursor == 1
    logger = module.LoggerMock()
    logger.add_bind(lambda **kw: logger)
    assert logger.bind(a=1) is logger
    tracer = module.TracerMock()
    assert tracer.version() == "1"
    tracer.add_span(lambda name: iter([len(name)]))
    with tracer.span("abc") as n:
        assert n == 3
    assert "def version" not in (shapes / "app" / "mocks" / "shapes.py").read_text()


async def test_kwargs_callbacks_accept_the_interface_signature(shapes: Path) -> None:
    """A fake with the method's own ``*args``/``**kwargs`` signature is called as written."""
    generate([shapes / "app"])
    stock = importlib.import_module("app.mocks.shapes").StockMock()
    seen: list[tuple[object, ...]] = []

    async def reserve(sku: str, qty: int, *reasons: str, **tags: str) -> bool:
        seen.append((sku, qty, reasons, tags))
        return True

    stock.add_reserve(reserve)
    assert await stock.reserve("a", 2, "why", team="x") is True
    assert seen == [("a", 2, ("why",), {"team": "x"})]
    with pytest.raises(UnexpectedCallError, match=r"StockMock\.reserve\('b', 1\)"):
        await stock.reserve("b", 1)


REFUSED = {
    "stub default": (
        "class Api(Protocol):\n    def get(self, key: str = ...) -> int: ...\n",
        2,
        "Api.get",
        "parameter 'key' has the stub default '...'",
    ),
    "abstract classmethod": (
        "class Api(abc.ABC):\n    @classmethod\n    @abc.abstractmethod\n"
        "    def create(cls) -> int: ...\n",
        4,
        "Api.create",
        "an abstract class or static method cannot be programmed per mock instance",
    ),
    "class variable": (
        "class Api(Protocol):\n    limit: ClassVar[int]\n\n    def get(self) -> int: ...\n",
        2,
        "Api.limit",
        "a class variable without a value cannot be programmed per mock instance",
    ),
    "object machinery": (
        "class Api(Protocol):\n    def __getattribute__(self, name: str) -> int: ...\n",
        2,
        "Api.__getattribute__",
        "a mock cannot take over __getattribute__",
    ),
    "subclass arguments": (
        "class Plugin(abc.ABC):\n    def __init_subclass__(cls, *, name: str, **kw: int) -> None:"
        "\n        super().__init_subclass__()\n\n"
        "    @abc.abstractmethod\n    def run(self) -> None: ...\n",
        2,
        "Plugin.__init_subclass__",
        "a subclass must pass it 'name'",
    ),
    "deleter without getter": (
        "class Api(Protocol):\n    @x.deleter\n    def x(self) -> None: ...\n",
        3,
        "Api.x",
        "a property deleter without a getter",
    ),
}
_PRELUDE = "import abc\nfrom typing import ClassVar, Protocol\n"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_shapes_are_refused_at_their_place(tmp_path: Path, case: str) -> None:
    """Each unsupported shape is refused naming file, line and member; nothing is written."""
    body, line, member, reason = REFUSED[case]
    source = _PRELUDE + "\n\n" + body
    (tmp_path / "api.py").write_text(source)
    offset = source.splitlines().index(body.splitlines()[0])
    with pytest.raises(GenerationError) as info:
        generate([tmp_path / "api.py"])
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'api.py'}:{offset + line}: cannot mock '{member}': ")
    assert reason in message
    assert not (tmp_path / "mocks").exists()


@pytest.mark.parametrize("pytest_form", [False, True], ids=["default", "pytest"])
def test_real_shapes_pass_ruff(shapes: Path, pytest_form: bool) -> None:
    """Long class lines wrapped, docstrings within bounds: ruff has nothing to change."""
    generate([shapes / "app"], pytest=pytest_form)
    mocks = shapes / "app" / "mocks"
    assert (
        "class ARepositoryWhoseNameIsLongEnoughToWrapMock(\n" in (mocks / "shapes.py").read_text()
    )
    ruff = [sys.executable, "-m", "ruff"]
    for command in (
        [*ruff, "format", "--isolated", "--check", "--diff", str(mocks)],
        [*ruff, "check", "--isolated", "--select", "E,W,F,I,B,C4,SIM,RUF,PIE,RET,N", str(mocks)],
    ):
        proc = subprocess.run(
            command, cwd=shapes, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_import_that_cannot_be_recreated_names_its_member(tmp_path: Path) -> None:
    """``import json`` in a base and another ``json`` in the subclass: refused at the member."""
    (tmp_path / "base.py").write_text(
        "import json\nfrom typing import Protocol\n\n\nclass Base(Protocol):\n"
        "    def decoder(self) -> json.JSONDecoder: ...\n"
    )
    (tmp_path / "other.py").write_text("class json: ...\n")
    (tmp_path / "api.py").write_text(
        "from typing import Protocol\n\nfrom base import Base\nfrom other import json\n\n\n"
        "class Api(Base, Protocol):\n    def load(self, data: json) -> None: ...\n"
    )
    with pytest.raises(GenerationError) as info:
        generate([tmp_path / "api.py"])
    assert str(info.value).startswith(
        f"{tmp_path / 'base.py'}:6: cannot mock 'Base.decoder': module 'json' is imported"
    )


def test_generated_imports_are_sorted_as_ruff_sorts_them(tmp_path: Path) -> None:
    """Names differing in case, digits and kind are ordered the way ruff's isort orders them."""
    names = ["ExcInfo", "ExceptionTransformer", "Item10", "Item2", "item", "MAX", "Zed", "abc1"]
    defs = "".join(
        f"{n} = int\n" if not n[:1].isupper() or n.isupper() else f"class {n}: ...\n" for n in names
    )
    (tmp_path / "types_.py").write_text(defs)
    uses = ", ".join(f"a{i}: {n}" for i, n in enumerate(names))
    (tmp_path / "api.py").write_text(
        f"from typing import Protocol\n\nfrom types_ import {', '.join(names)}\n\n\n"
        f"class Api(Protocol):\n    def get(self, {uses}) -> None: ...\n"
    )
    generate([tmp_path / "api.py"])
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "I",
         str(tmp_path / "mocks")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _long_names_module(seed: int) -> str:
    rng = random.Random(seed)
    parts = ["import abc\nfrom typing import Protocol\n"]
    for i in range(12):
        parts.append(f"\n\nclass I{'x' * rng.randint(5, 70)}{i}(Protocol):\n")
        for j in range(3):
            name = f"m{'y' * rng.randint(1, 75)}{j}"
            if rng.random() < 0.3:
                parts.append(f"    @property\n    def {name}(self) -> int: ...\n")
                continue
            prefix = "async def" if rng.random() < 0.3 else "def"
            keyword = ", *, flag: bool" if rng.random() < 0.5 else ""
            returns = "None" if rng.random() < 0.3 else "str"
            parts.append(f"    {prefix} {name}(self, a: int{keyword}) -> {returns}: ...\n")
        if rng.random() < 0.5:
            parts.append(f"    attr{'z' * rng.randint(1, 70)}: int\n")
        if rng.random() < 0.3:
            parts.append("    def __setattr__(self, name: str, value: int) -> None: ...\n")
    return "".join(parts)


@pytest.mark.parametrize("pytest_form", [False, True], ids=["default", "pytest"])
def test_long_names_are_laid_out_as_ruff_lays_them_out(tmp_path: Path, pytest_form: bool) -> None:
    """Names long enough to force every split (class lines, helpers, constructor, fixture):
    ``ruff format`` finds nothing to change."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "long.py").write_text(_long_names_module(20261206))
    generate([tmp_path / "app"], pytest=pytest_form)
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--isolated", "--check", "--diff",
         str(tmp_path / "app" / "mocks")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


SHADOWING = """\
import datetime as dt
import typing as t
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from decimal import Decimal


class Calendar(Protocol):
    def next_day(self, date: date) -> date: ...

    async def parse(self, dt: str) -> dt.datetime: ...

    def find(self, t: int) -> t.Optional["Decimal"]: ...

    def price(self, Decimal: str, /) -> "Decimal": ...

    @property
    def today(self) -> date: ...
"""


def test_parameters_named_like_their_return_type_still_type_check(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]], forget: Callable[[str], None]
) -> None:
    """A parameter named like a name in the return annotation (``def next_day(self, date:
    date) -> date``) does not change what the mock's return type means: the mock passes
    ``mypy --strict`` and runs."""
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "__init__.py").write_text("")
    (tmp_path / "cal" / "calendar.py").write_text(SHADOWING)
    generate([tmp_path / "cal"])
    status, output = run_mypy(tmp_path, "cal")
    assert status == 0, output
    sys.path.insert(0, str(tmp_path))
    forget("cal")
    try:
        module = importlib.import_module("cal.mocks.calendar")
        calendar = module.CalendarMock()
        calendar.add_next_day(lambda day: day.replace(day=2))
        import datetime

        assert calendar.next_day(datetime.date(2026, 1, 1)) == datetime.date(2026, 1, 2)
    finally:
        sys.path.remove(str(tmp_path))
        forget("cal")


MANGLED = """\
import abc
from typing import Protocol


class _Pipeline(abc.ABC):
    def run(self) -> int:
        return self.__step(1) + self.__size

    @abc.abstractmethod
    def __step(self, n: int) -> int: ...

    @property
    @abc.abstractmethod
    def __size(self) -> int: ...


class Pipeline(_Pipeline):
    @abc.abstractmethod
    def close(self) -> None: ...


class Greeter(Protocol):
    def greet(self) -> str:
        return self.__name()

    def __name(self) -> str: ...
"""


def test_name_mangled_private_members_are_the_interfaces_own(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]], forget: Callable[[str], None]
) -> None:
    """An abstract ``__step`` (name-mangled to ``_Pipeline__step``) is implemented under the
    interface's mangled name: the mock instantiates, and the interface's own code calling
    ``self.__step()`` reaches the fake."""
    (tmp_path / "flow").mkdir()
    (tmp_path / "flow" / "__init__.py").write_text("")
    (tmp_path / "flow" / "steps.py").write_text(MANGLED)
    generate([tmp_path / "flow"])
    status, output = run_mypy(tmp_path, "flow")
    assert status == 0, output
    sys.path.insert(0, str(tmp_path))
    forget("flow")
    try:
        module = importlib.import_module("flow.mocks.steps")
        pipeline = module.PipelineMock()
        pipeline.set_run(lambda: 0)
        pipeline.add_step(lambda n: n + 40)
        pipeline.add_size(lambda: 1)
        interface = importlib.import_module("flow.steps")
        assert interface._Pipeline.run(pipeline) == 42
        pipeline.assert_all_called()
        greeter = module.GreeterMock()
        greeter.add_name(lambda: "ann")
        assert interface.Greeter.greet(greeter) == "ann"
    finally:
        sys.path.remove(str(tmp_path))
        forget("flow")


DELETERS = """\
import abc
from typing import Protocol


class Session(Protocol):
    @property
    def token(self) -> str: ...

    @token.setter
    def token(self, value: str) -> None: ...

    @token.deleter
    def token(self) -> None: ...


class Cache(abc.ABC):
    @property
    @abc.abstractmethod
    def entry(self) -> int: ...

    @entry.deleter
    @abc.abstractmethod
    def entry(self) -> None: ...
"""


def test_property_deleters_are_mocked(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]], forget: Callable[[str], None]
) -> None:
    """A property's deleter is part of the interface: ``del mock.token`` goes through the
    mock (``add_token_deleter``), and an unprogrammed one raises ``UnexpectedCallError``."""
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "__init__.py").write_text("")
    (tmp_path / "auth" / "session.py").write_text(DELETERS)
    generate([tmp_path / "auth"])
    (tmp_path / "use.py").write_text(
        "from auth.mocks.session import CacheMock, SessionMock\n\n"
        "def use(session: SessionMock, cache: CacheMock) -> None:\n"
        "    session.add_token_deleter(lambda: None)\n"
        "    cache.set_entry_deleter(lambda: None)\n"
        "    del session.token\n"
        "    del cache.entry\n"
    )
    status, output = run_mypy(tmp_path, "auth", "use.py")
    assert status == 0, output
    sys.path.insert(0, str(tmp_path))
    forget("auth")
    try:
        module = importlib.import_module("auth.mocks.session")
        session = module.SessionMock()
        with pytest.raises(UnexpectedCallError, match=r"SessionMock\.token\.deleter\(\)"):
            del session.token
        deleted: list[str] = []
        session.add_token_deleter(lambda: deleted.append("token"))
        del session.token
        cache = module.CacheMock()
        cache.set_entry_deleter(lambda: deleted.append("entry"))
        del cache.entry
        assert deleted == ["token", "entry"]
        session.assert_all_called()
    finally:
        sys.path.remove(str(tmp_path))
        forget("auth")


VARIADIC = """\
import abc
from typing import Generic, Protocol, TypeVar, TypeVarTuple, Unpack

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Batch(Protocol[*Ts]):
    def items(self) -> tuple[*Ts]: ...

    def put(self, *items: *Ts) -> None: ...


class Row(abc.ABC, Generic[T, Unpack[Ts]]):
    @abc.abstractmethod
    def key(self, columns: tuple[*Ts]) -> T: ...


class Pair(Batch[int, str], Protocol):
    def first(self) -> int: ...


class Labelled(Row[str, *Ts]):
    @abc.abstractmethod
    def label(self) -> str: ...
"""

VARIADIC_USE = """\
from rows.mocks.batch import BatchMock, LabelledMock, PairMock, RowMock


def use(
    batch: BatchMock[int, str],
    pair: PairMock,
    row: RowMock[str, int, bytes],
    labelled: LabelledMock[int],
) -> tuple[int, str]:
    batch.add_put(lambda *items: None)
    batch.put(1, "a")
    pair.add_items(lambda: (1, "a"))
    row.add_key(lambda columns: f"{columns[0]}{columns[1]!r}")
    labelled.add_key(lambda columns: str(columns[0]))
    return pair.items()
"""


def test_type_var_tuple_generics_are_kept(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]], forget: Callable[[str], None]
) -> None:
    """An interface generic over a ``TypeVarTuple`` (``Protocol[*Ts]``, ``Generic[T,
    Unpack[Ts]]``) gets a mock generic over it, and a subclass's arguments replace it in
    inherited members (``Batch[int, str]`` gives ``items() -> tuple[int, str]``): the mocks,
    their fixtures and typed use pass ``mypy --strict``, and the mocks run."""
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "__init__.py").write_text("")
    (tmp_path / "rows" / "batch.py").write_text(VARIADIC)
    generate([tmp_path / "rows"], pytest=True)
    (tmp_path / "use.py").write_text(VARIADIC_USE)
    status, output = run_mypy(tmp_path, "rows", "use.py")
    assert status == 0, output
    generate([tmp_path / "rows"])
    sys.path.insert(0, str(tmp_path))
    forget("rows")
    try:
        module = importlib.import_module("rows.mocks.batch")
        pair = module.PairMock()
        put: list[tuple[object, ...]] = []
        pair.add_put(lambda *items: put.append(items))
        pair.put(1, "a")
        assert put == [(1, "a")]
        labelled = module.LabelledMock()
        labelled.add_key(lambda columns: columns)
        assert labelled.key((1,)) == (1,)
    finally:
        sys.path.remove(str(tmp_path))
        forget("rows")
