"""The public API as users write it, checked by ``mypy --strict`` (the typecheck session).

Not a test module: pytest does not collect it and nothing runs it. Each ``assert_type``
states the type a user's code sees; a change of a public signature that breaks one fails
the typecheck session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, assert_type

from clue import mock


def runtime() -> None:
    m = mock.Mock("Store")
    m.add("get", lambda key: key.upper())
    m.set("close", lambda: None)
    assert_type(m.name, str)
    assert_type(m.next("get"), Callable[..., Any] | None)
    assert_type(m.has_more(), bool)
    assert_type(m.remaining(), list[str])
    m.call("get", "a")
    try:
        m.assert_all_called()
    except mock.MissingCallsError as missing:
        assert_type(missing, mock.MissingCallsError)
    except mock.UnexpectedCallError as unexpected:
        assert_type(str(unexpected), str)


def generation() -> None:
    try:
        out = mock.generate(["app.store", Path("app/clients.py")], pytest=True, write=False)
    except mock.GenerationError as error:
        assert_type(error, mock.GenerationError)
    else:
        assert_type(out, dict[Path, str])
