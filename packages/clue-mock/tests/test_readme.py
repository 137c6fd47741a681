"""The README's worked example runs as written: interface, ``cmg gen``, tests using the mock."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from clue.mock import generate

README = Path(__file__).parent.parent / "README.md"
_BLOCK = re.compile(r"<!-- (\w[\w-]*)(?:: (\S+))? -->\n```python\n(.*?)```", re.DOTALL)


def _blocks(kind: str) -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    return {name or "": body for k, name, body in _BLOCK.findall(text) if k == kind}


def test_worked_example(pytester: pytest.Pytester) -> None:
    """The interface generates the excerpt shown, and the README's tests pass with it."""
    files = _blocks("file")
    assert set(files) == {"shop/users.py", "test_greeting.py"}
    (pytester.path / "shop").mkdir()
    (pytester.path / "shop" / "__init__.py").write_text("")
    for name, body in files.items():
        (pytester.path / name).write_text(body)
    generated = generate([pytester.path / "shop" / "users.py"])
    text = generated[pytester.path / "shop" / "mocks" / "users.py"]
    excerpt = _blocks("generated")["shop/mocks/users.py"]
    for paragraph in excerpt.strip().split("\n\n"):
        lines = paragraph.strip("\n").splitlines()
        if lines[0].startswith("class "):
            assert f"\n{lines[0]}\n" in text
            lines = lines[1:]
        assert "\n".join(lines) in text, paragraph
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_greeting.py")
    result.assert_outcomes(passed=4)


def test_pytest_form_example(pytester: pytest.Pytester) -> None:
    """The ``--pytest`` example fails at teardown with the message the README quotes."""
    (pytester.path / "shop").mkdir()
    (pytester.path / "shop" / "__init__.py").write_text("")
    (pytester.path / "shop" / "users.py").write_text(_blocks("file")["shop/users.py"])
    generate([pytester.path / "shop"], pytest=True)
    for name, body in _blocks("pytest-form").items():
        (pytester.path / name).write_text(body)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_forgotten_call_fails_at_teardown*",
            "*MissingCallsError: 1 sequenced call was not made: "
            "UserDirectoryMock.get (call 2 of 2)",
        ]
    )


def test_runtime_example() -> None:
    """The README's ``Mock`` example runs and its assertions hold."""
    (code,) = _blocks("run").values()
    exec(compile(code, str(README), "exec"), {})  # our own README's example


def test_helpers_are_typed_as_claimed(
    tmp_path: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """mypy rejects the two wrong fakes the README mentions, and accepts a right one."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "users.py").write_text(_blocks("file")["shop/users.py"])
    generate([tmp_path / "shop"])
    (tmp_path / "claims.py").write_text(
        "from shop.mocks.users import UserDirectoryMock\n"
        "from shop.users import User\n"
        "users = UserDirectoryMock()\n"
        "users.add_get(lambda user_id, *, include_deleted: User(user_id, 'ann'))\n"
        "users.add_get(lambda user_id: None)\n"
        "users.add_get(lambda user_id, *, include_deleted: 'ann')\n"
    )
    status, output = run_mypy(tmp_path, "shop", "claims.py")
    assert status == 1
    assert sorted(set(re.findall(r"^claims\.py:(\d+): error", output, re.MULTILINE))) == [
        "5",
        "6",
    ], output
