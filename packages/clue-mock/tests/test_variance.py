"""Variance of class type variables in callback signatures (for generic callback protocols)."""

from __future__ import annotations

import pytest

from clue.mock._variance import substitute, variances


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ([("K", -1), ("V", 1)], {"K": -1, "V": 1}),
        ([("K", -1), ("K", 1)], {"K": 0}),
        ([("Sequence[K]", 1), ("Callable[[K], V]", -1)], {"K": 1, "V": -1}),
        ([("Callable[[K], None]", -1)], {"K": 1}),
        ([("Mapping[K, V] | None", 1)], {"K": 0, "V": 1}),
        ([('"Sequence[K]"', 1)], {"K": 1}),
        ([("Literal['K']", 1), ("int", -1)], {}),
        ([("Annotated[K, 'meta']", -1)], {"K": -1}),
    ],
)
def test_variances(annotations: list[tuple[str, int]], expected: dict[str, int]) -> None:
    """Polarity flips through Callable arguments and stops at invariant positions."""
    assert variances(annotations, {"K", "V"}) == expected


@pytest.mark.parametrize("annotation", ["list[K]", "dict[str, K]", "MyGeneric[K]", "K[int]"])
def test_unknown_generic_gives_up(annotation: str) -> None:
    """A type variable inside a generic of unknown variance is reported as unknown."""
    assert variances([(annotation, 1)], {"K"}) is None


def test_substitute_keeps_quotes_and_literals() -> None:
    """Names are replaced, in forward references too; Literal values are kept."""
    text = 'Mapping[K, "Sequence[K]"] | Literal["K", b"x"]'
    assert substitute(text, {"K": "_K_co"}) == (
        'Mapping[_K_co, "Sequence[_K_co]"] | Literal["K", b"x"]'
    )
