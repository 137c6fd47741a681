"""Request ids and URL redaction: untrusted input in, safe values out (property tests)."""

from __future__ import annotations

import os
import re

from hypothesis import given
from hypothesis import strategies as st

from clue.log._http_client import redact_url
from clue.log._request_id import new_request_id, request_id_from

SAFE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


@given(st.one_of(st.none(), st.text(max_size=300), st.binary(max_size=300)))
def test_any_incoming_value_gives_a_safe_id(incoming: str | bytes | None) -> None:
    """Whatever arrives in X-Request-Id, the id used is short and made of safe characters."""
    rid = request_id_from(incoming)
    assert SAFE.fullmatch(rid)
    text = incoming.decode("latin-1") if isinstance(incoming, bytes) else incoming
    if text and SAFE.fullmatch(text):
        assert rid == text
    else:
        assert len(rid) == 8


def test_new_ids_are_distinct() -> None:
    """Generated ids are 8 URL-safe characters and do not repeat in practice."""
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{8}", i) for i in ids)


@given(
    user=st.text(
        alphabet=st.characters(blacklist_characters="@/?#[]", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=20,
    ),
    password=st.text(
        alphabet=st.characters(blacklist_characters="@/?#[]", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=20,
    ),
    path=st.text(alphabet="abc/=&?", max_size=20),
)
def test_redacted_urls_hold_no_credentials(user: str, password: str, path: str) -> None:
    """http.url never carries the user:password part of the URL."""
    url = f"https://{user}:{password}@example.test:8443/{path}"
    out = redact_url(url)
    assert out == f"https://example.test:8443/{path}"


@given(st.text(max_size=100))
def test_redact_never_raises(url: str) -> None:
    """Redaction accepts any string and never raises."""
    assert isinstance(redact_url(url), str)


@given(st.integers(min_value=1, max_value=300))
def test_ids_made_ahead_are_well_formed_and_distinct(n: int) -> None:
    """Any number of ids taken in a row, across the batches they are made in, are
    8 URL-safe characters each and distinct."""
    ids = [new_request_id() for _ in range(n)]
    assert len(set(ids)) == n
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{8}", i) for i in ids)


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    """After a fork, the child's ids are its own: none of the ids the parent made
    ahead (and goes on handing out) comes out of the child."""
    new_request_id()  # the parent now holds a batch made ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then leave at once
        try:
            os.write(write, " ".join(new_request_id() for _ in range(10)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split()
    os.waitpid(pid, 0)
    parent = [new_request_id() for _ in range(10)]
    assert len(child) == 10
    assert not set(child) & set(parent)


def test_seeding_the_global_generator_never_repeats_ids() -> None:
    """An application that seeds ``random`` (reproducible tests, simulations) does not
    make request ids repeat."""
    import random

    ids = []
    for _ in range(3):
        random.seed(1234)
        ids.extend(new_request_id() for _ in range(100))
    assert len(set(ids)) == 300
