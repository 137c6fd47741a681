"""The assertion errors a mock raises: an unexpected call, and calls that never came."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence

# Bounded reprs: a huge argument must not turn a failure message into megabytes.
_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 10


MAX_REPR = 200  # characters of one argument in a failure message


class UnexpectedCallError(AssertionError):
    """A mock received a call that no ``add``/``set`` function was programmed for.

    It subclasses ``AssertionError`` so that test runners report it as a failed
    expectation, not as a crash of the code under test.

    Attributes:
        mock: the mock's name (the generated class name, for generated mocks).
        method: the name of the method that was called.
        call_args: the positional arguments of the call.
        call_kwargs: the keyword arguments of the call.
        expected: the method the sequence expected next, or ``None`` when the sequence
            is exhausted.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        mock: str,
        method: str,
        args: Sequence[object],
        kwargs: Mapping[str, object],
        *,
        expected: str | None,
        position: int,
        total: int,
    ) -> None:
        self.mock = mock
        self.method = method
        self.call_args = tuple(args)
        self.call_kwargs = dict(kwargs)
        self.expected = expected
        call = f"{mock}.{method}({format_arguments(args, kwargs)})"
        if expected is not None:
            reason = (
                f"the next expected call is {mock}.{expected} "
                f"(sequenced call {position} of {total})"
            )
        elif total:
            reason = (
                f"all {total} sequenced calls were made and no permanent "
                f"implementation is set for {method!r}"
            )
        else:
            reason = f"nothing was added or set for {method!r}"
        super().__init__(f"unexpected call {call}: {reason}")


class MissingCallsError(AssertionError):
    """Sequenced calls were still expected when the test asserted that all were made.

    Attributes:
        mock: the mock's name.
        missing: the method names of the calls that were not made, in sequence order.

    .. versionadded:: 0.1.0
    """

    def __init__(self, mock: str, missing: Sequence[str], *, made: int) -> None:
        self.mock = mock
        self.missing = tuple(missing)
        total = made + len(self.missing)
        listed = ", ".join(
            f"{mock}.{name} (call {made + i} of {total})"
            for i, name in enumerate(self.missing, start=1)
        )
        noun = "call was" if len(self.missing) == 1 else "calls were"
        super().__init__(f"{len(self.missing)} sequenced {noun} not made: {listed}")


def format_arguments(args: Sequence[object], kwargs: Mapping[str, object]) -> str:
    """Render call arguments the way they would be written, with bounded reprs."""
    parts = [_safe_repr(a) for a in args]
    parts.extend(f"{k}={_safe_repr(v)}" for k, v in kwargs.items())
    return ", ".join(parts)


def _safe_repr(value: object) -> str:
    # A failing __repr__ must not hide the unexpected call behind another error.
    try:
        text = _REPR.repr(value)
    except Exception:  # any error from the user's __repr__ is reported, never raised
        return f"<{type(value).__qualname__} object (repr failed)>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
