"""The examples in the package's docstrings run and show what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

# Modules whose public docstrings carry an ``Example:``.
DOCUMENTED = [
    "clue.health._accept",
    "clue.health._asgi",
    "clue.health._checker",
    "clue.health._health",
    "clue.health._http",
    "clue.health._pinger",
    "clue.health._probes",
    "clue.health._wsgi",
    "clue.health.grpc",
]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name):
    """Every docstring example of the module passes as a doctest."""
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
