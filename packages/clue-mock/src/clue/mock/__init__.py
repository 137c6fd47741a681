"""clue.mock: ordered test doubles, and ``cmg``, a typed mock generator.

``Mock`` is the runtime every generated mock is built on: an ordered sequence of
expected calls (``add``) plus permanent implementations (``set``). ``cmg gen TARGET...``
(or :func:`generate`) writes a typed mock class for every ``typing.Protocol`` and
``abc.ABC`` interface it finds.
"""

from __future__ import annotations

from clue.mock._errors import MissingCallsError, UnexpectedCallError
from clue.mock._generate import generate
from clue.mock._mock import Mock
from clue.mock._source import GenerationError

__all__ = [
    "GenerationError",
    "MissingCallsError",
    "Mock",
    "UnexpectedCallError",
    "generate",
]
