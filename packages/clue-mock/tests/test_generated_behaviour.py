"""Generated mocks at run time: they forward calls exactly and fail clearly."""

from __future__ import annotations

import asyncio
import decimal
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clue.mock import MissingCallsError, UnexpectedCallError, generate


@pytest.fixture
def mocks(shop: Path) -> ModuleType:
    """The generated default-form ``shop.mocks.services`` module, imported."""
    generate([shop / "shop"])
    return importlib.import_module("shop.mocks.services")


def test_mocks_are_instances_of_their_interfaces(mocks: ModuleType) -> None:
    """Mocks subclass their interface, so ABC mocks instantiate and pass isinstance."""
    services = importlib.import_module("shop.services")
    assert services.Users in type(mocks.UsersMock()).__mro__
    assert isinstance(mocks.StoreMock(), services.Store)
    assert isinstance(mocks.CachedStoreMock(), services.CachedStore)


def test_every_parameter_kind_is_forwarded(mocks: ModuleType) -> None:
    """Positional-only, defaults, ``*args``, keyword-only and ``**kwargs`` reach the fake."""
    users = mocks.UsersMock()
    seen: list[Any] = []

    def search(
        query: str, page: int, /, *terms: str, exact: bool, sort: str, **options: Any
    ) -> list[Any]:
        seen.append((query, page, terms, exact, sort, options))
        return ["hit"]

    users.add_search(search)
    users.add_search(search)
    assert users.search("q", exact=True) == ["hit"]
    assert users.search("q", 3, "a", "b", exact=False, sort="id", limit=5) == ["hit"]
    assert seen == [
        ("q", 20, (), True, "name", {}),
        ("q", 3, ("a", "b"), False, "id", {"limit": 5}),
    ]
    assert not users.has_more_()


def test_sequence_then_permanent(mocks: ModuleType) -> None:
    """Sequenced fakes run first, in order; the permanent fake serves the rest."""
    users = mocks.UsersMock()
    users.add_call(lambda user_id: f"first {user_id}")
    users.set_call(lambda user_id: f"always {user_id}")
    assert [users(1), users(2), users(3)] == ["first 1", "always 2", "always 3"]


async def test_async_methods_are_awaited(mocks: ModuleType) -> None:
    """``async`` methods await the fake's coroutine; async generators are returned as is."""
    users = mocks.UsersMock()

    async def put(key: int, value: Any, /, *, ttl: float) -> None:
        assert (key, value, ttl) == (1, "ann", 1.5)

    async def stream(since: Any) -> Any:
        for i in range(2):
            await asyncio.sleep(0)
            yield i

    users.add_put(put)
    users.add_stream(stream)
    assert await users.put(1, "ann") is None
    assert [i async for i in users.stream()] == [0, 1]
    store = mocks.CachedStoreMock()

    async def warm(users: list[Any], /) -> int:
        return len(users)

    store.add_warm(warm)
    assert await store.warm([1, 2, 3]) == 3


def test_properties_getter_and_setter(mocks: ModuleType) -> None:
    """Property reads and writes go through ``add_<p>`` and ``add_<p>_setter``."""
    users = mocks.UsersMock()
    written: list[str] = []
    users.set_count(lambda: 7)
    users.add_owner_setter(written.append)
    users.owner = "bob"
    assert users.count == 7
    assert written == ["bob"]


def test_overloaded_method(mocks: ModuleType) -> None:
    """Overloaded methods forward whatever they receive."""
    users = mocks.UsersMock()
    users.set_lookup(lambda ref: ("looked up", ref))
    assert users.lookup(3) == ("looked up", 3)
    assert users.lookup(ref="x") == ("looked up", "x")


def test_inherited_and_clashing_members(mocks: ModuleType) -> None:
    """Inherited ``get`` uses ``add_get_`` since the interface has its own ``add_get``."""
    users = mocks.UsersMock()
    users.add_get_(lambda key, default: ("got", key, default))
    users.add_add_get(lambda user: 42)
    users.set_has_more(lambda: "the interface's has_more")
    assert users.get(5) == ("got", 5, None)
    assert users.add_get("ann") == 42
    assert users.has_more() == "the interface's has_more"
    assert users.has_more_() is False


def test_abc_mock_defaults_and_private_abstract_methods(mocks: ModuleType) -> None:
    """ABC mocks implement abstract private methods and keep defaults of keyword-only params."""
    store = mocks.StoreMock()
    store.add_save(lambda user, *, force: force)
    store.add_flush(lambda: None)
    assert store.save("ann") is False
    assert store._flush() is None
    assert store.version() == "1"
    store.assert_all_called()


def test_unexpected_call_names_method_and_arguments(mocks: ModuleType) -> None:
    """A call nothing was programmed for raises an AssertionError naming it and its arguments."""
    users = mocks.UsersMock()
    users.add_total(lambda user, currency: decimal.Decimal(1))
    with pytest.raises(UnexpectedCallError) as info:
        users.rename("ann", "Ann", note="hi")
    assert isinstance(info.value, AssertionError)
    assert str(info.value) == (
        "unexpected call UsersMock.rename('ann', 'Ann', 'hi'): the next expected call is "
        "UsersMock.total (sequenced call 1 of 1)"
    )


def test_assert_all_called_lists_what_is_missing(mocks: ModuleType) -> None:
    """The generated ``assert_all_called`` fails with the calls that were not made."""
    users = mocks.UsersMock()
    users.add_call(lambda user_id: None)
    users.add_total(lambda user, currency: None)
    users(1)
    with pytest.raises(MissingCallsError, match=r"UsersMock.total \(call 2 of 2\)"):
        users.assert_all_called()


def test_pytest_form_fails_at_teardown(shop: Path, pytester: pytest.Pytester) -> None:
    """With ``--pytest``, leftover sequenced calls fail the test at teardown; complete ones pass."""
    generate([shop / "shop"], pytest=True)
    for path in sorted((shop / "shop").rglob("*.py")):
        target = pytester.path / path.relative_to(shop)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    pytester.makeconftest('pytest_plugins = ["shop.mocks.services"]\n')
    pytester.makepyfile(
        test_uses_mock="""
        def test_complete(users_mock):
            users_mock.add_call(lambda user_id: user_id)
            assert users_mock(3) == 3

        def test_incomplete(users_mock):
            users_mock.add_call(lambda user_id: user_id)
            users_mock.add_count(lambda: 1)
            users_mock(3)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_incomplete*",
            "*MissingCallsError: 1 sequenced call was not made: UsersMock.count (call 2 of 2)*",
        ]
    )
