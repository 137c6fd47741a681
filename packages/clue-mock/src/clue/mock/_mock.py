"""The runtime of every mock: an ordered sequence of expected calls plus permanent ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from clue.mock._errors import MissingCallsError, UnexpectedCallError

__all__ = ["Mock"]


class Mock:
    """Ordered and permanent fake implementations for the methods of a test double.

    ``add(name, fn)`` appends ``fn`` to one sequence shared by all methods: calls must
    arrive in the order they were added. ``set(name, fn)`` installs a permanent
    implementation, used whenever the sequence does not expect ``name`` next (for
    example once the sequence is exhausted). All methods are thread-safe.

    Generated mocks (``cmg gen``) hold a ``Mock`` and expose typed ``add_<method>`` and
    ``set_<method>`` helpers; ``Mock`` can also back a hand-written double.

    Args:
        name: how failure messages name the double (generated mocks use their class
            name).

    Example:
        >>> m = Mock("Users")
        >>> m.add("get", lambda user_id: {"id": user_id})
        >>> m.set("get", lambda user_id: None)
        >>> m.next("get")(7)
        {'id': 7}
        >>> m.next("get")(8) is None
        True
        >>> m.has_more()
        False

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_lock", "_name", "_permanent", "_pos", "_sequence")

    def __init__(self, name: str = "mock") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._sequence: list[tuple[str, Callable[..., Any]]] = []
        self._pos = 0
        self._permanent: dict[str, Callable[..., Any]] = {}

    @property
    def name(self) -> str:
        """The name failure messages use for this double."""
        return self._name

    def add(self, name: str, fn: Callable[..., Any]) -> None:
        """Append ``fn`` as the implementation of the next expected call to ``name``."""
        with self._lock:
            self._sequence.append((name, fn))

    def set(self, name: str, fn: Callable[..., Any]) -> None:
        """Make ``fn`` the permanent implementation of ``name`` (replacing any previous)."""
        with self._lock:
            self._permanent[name] = fn

    def next(self, name: str) -> Callable[..., Any] | None:
        """Return the implementation for a call to ``name``, or ``None``.

        When the next function in the sequence was added for ``name`` it is consumed
        and returned; otherwise the permanent implementation set for ``name``, if any.
        """
        with self._lock:
            return self._next_locked(name)

    def has_more(self) -> bool:
        """Tell whether sequenced calls remain to be made."""
        with self._lock:
            return self._pos < len(self._sequence)

    def remaining(self) -> list[str]:
        """The method names of the sequenced calls not made yet, in order."""
        with self._lock:
            return [name for name, _ in self._sequence[self._pos :]]

    def assert_all_called(self) -> None:
        """Fail when sequenced calls remain.

        Raises:
            MissingCallsError: listing every sequenced call that was not made.
        """
        with self._lock:
            missing = [name for name, _ in self._sequence[self._pos :]]
            made = self._pos
        if missing:
            raise MissingCallsError(self._name, missing, made=made)

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Make a call to ``name``: run the implementation :meth:`next` returns.

        Generated mocks route every call they receive through this method.

        Raises:
            UnexpectedCallError: when neither the sequence nor a permanent
                implementation covers the call. The message names the call with its
                arguments and the call the sequence expected instead.
        """
        with self._lock:
            fn = self._next_locked(name)
            if fn is None:
                total = len(self._sequence)
                expected = self._sequence[self._pos][0] if self._pos < total else None
                position = self._pos + 1
        if fn is None:
            raise UnexpectedCallError(
                self._name, name, args, kwargs, expected=expected, position=position, total=total
            )
        # Called outside the lock: the implementation may call the mock again.
        return fn(*args, **kwargs)

    def _next_locked(self, name: str) -> Callable[..., Any] | None:
        if self._pos < len(self._sequence):
            expected, fn = self._sequence[self._pos]
            if expected == name:
                self._pos += 1
                return fn
        return self._permanent.get(name)

    def __repr__(self) -> str:
        with self._lock:
            left = len(self._sequence) - self._pos
            permanent = sorted(self._permanent)
        return f"<Mock {self._name!r}: {left} sequenced calls left, permanent={permanent}>"
