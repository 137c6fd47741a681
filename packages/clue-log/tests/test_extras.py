"""Without an optional dependency, the names that need it say which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clue import log
from clue.log import _LAZY  # type: ignore[attr-defined]

# Each extra is named after the one module that, missing, makes it missing.
EXTRAS = sorted({extra for _module, extra in _LAZY.values()} | {"celery"})

_PROBE = """
import sys
sys.modules[sys.argv[1]] = None  # as if the extra's dependency were not installed
from clue import log
for name in sys.argv[2:]:
    try:
        getattr(log, name)
    except ImportError as exc:
        print(f"{name}|{exc}|{exc.name}")
try:
    import clue.log.celery
except ImportError as exc:
    print(f"celery|{exc}|{exc.name}")
"""


@pytest.mark.parametrize("extra", EXTRAS)
def test_names_without_their_extra_name_it(extra: str) -> None:
    """Each name on a missing extra (and clue.log.celery) raises ImportError naming
    clue-log[extra]; the names on other extras still load, and clue.log still imports."""
    needing = sorted(name for name, (_module, e) in _LAZY.items() if e == extra)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, extra, *sorted(_LAZY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("|") for line in done.stdout.splitlines()]
    failed = [name for name, _message, _module in rows if name != "celery"]
    assert failed == needing
    for name, message, module in rows:
        where = "clue.log.celery" if name == "celery" else f"clue.log.{name}"
        if name == "celery":
            assert extra == "celery"
        assert message.startswith(
            f"{where} needs the {extra!r} extra: pip install 'clue-log[{extra}]' ("
        )
        assert module == extra


def test_lazy_names_are_listed_and_resolve() -> None:
    """dir() lists the lazy names and, with every extra installed, they resolve."""
    for name in _LAZY:
        assert name in dir(log)
        assert getattr(log, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    """A name clue.log does not have is an AttributeError naming it."""
    with pytest.raises(AttributeError, match="no_such_name"):
        log.no_such_name  # noqa: B018 -- the access is the test
