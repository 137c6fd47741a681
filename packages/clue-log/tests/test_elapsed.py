"""``http.time_ms`` and the clients' durations: milliseconds to the microsecond."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clue.log._server_options import elapsed_ms

# Any duration, and durations that fall half-way between two microseconds.
durations = st.one_of(
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
    st.integers(0, 10**10).map(lambda us: (us + 0.5) / 1e6),
)


@given(start=st.floats(min_value=0, max_value=1e7, allow_nan=False), took=durations)
def test_elapsed_is_milliseconds_to_the_microsecond(start: float, took: float) -> None:
    """A duration is a whole number of microseconds, within half of one of the clocks' reading."""
    now = start + took
    got = elapsed_ms(start, now)
    exact = (now - start) * 1000.0
    assert type(got) is float
    assert got == round(got, 3)
    assert abs(got - exact) <= 0.0005 + 1e-12 * exact
