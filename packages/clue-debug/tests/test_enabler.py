"""mount_debug_log_enabler: answers, switching, safety checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import debug


@pytest.fixture
def served(wsgi_server):
    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux)
    return wsgi_server(mux)


def test_get_answers_the_state(served, http) -> None:
    """GET /debug answers {"debug-logs":"off"} as compact JSON."""
    reply = http(served + "/debug")
    assert reply.status == 200
    assert reply.body == b'{"debug-logs":"off"}'
    assert reply.headers["Content-Type"] == "application/json"


def test_on_and_off_switch_and_answer_the_new_state(served, http) -> None:
    """?debug-logs=on and =off switch the process-wide switch and answer the new state."""
    assert http(served + "/debug?debug-logs=on").body == b'{"debug-logs":"on"}'
    assert debug.default_switch.enabled()
    assert http(served + "/debug").body == b'{"debug-logs":"on"}'
    assert http(served + "/debug?debug-logs=off").body == b'{"debug-logs":"off"}'
    assert not debug.default_switch.enabled()


def test_unknown_value_is_400_and_changes_nothing(served, http) -> None:
    """An unknown value answers 400 and leaves the switch as it was."""
    debug.default_switch.turn_on()
    reply = http(served + "/debug?debug-logs=maybe")
    assert reply.status == 400
    assert b"maybe" in reply.body
    assert debug.default_switch.enabled()


def test_time_limit_from_the_request(served, http, poll) -> None:
    """&seconds=N switches on for N seconds, reports the time left, then switches off."""
    body = http(served + "/debug?debug-logs=on&seconds=30").json()
    assert body["debug-logs"] == "on"
    assert 20 < body["remaining-seconds"] <= 30
    http(served + "/debug?debug-logs=on&seconds=0.1")
    poll(lambda: http(served + "/debug").json() == {"debug-logs": "off"})


def test_max_duration_caps_requests(wsgi_server, http) -> None:
    """With max_duration, longer requests are refused and plain 'on' is limited."""
    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux, max_duration=60)
    url = wsgi_server(mux)
    assert http(url + "/debug?debug-logs=on&seconds=61").status == 400
    assert not debug.default_switch.enabled()
    body = http(url + "/debug?debug-logs=on").json()
    assert 59 < body["remaining-seconds"] <= 60


def test_custom_names(wsgi_server, http) -> None:
    """path, query, on_value and off_value are honoured, in the answer too."""
    switch = debug.DebugLogSwitch()
    mux = debug.Mux()
    debug.mount_debug_log_enabler(
        mux, path="/admin/dbg", query="verbose", on_value="yes", off_value="no", switch=switch
    )
    url = wsgi_server(mux)
    assert http(url + "/admin/dbg?verbose=yes").body == b'{"verbose":"yes"}'
    assert switch.enabled()
    assert not debug.default_switch.enabled()
    assert http(url + "/admin/dbg?verbose=on").status == 400
    assert http(url + "/debug").status == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_cross_site_requests_are_refused(served, http, headers) -> None:
    """A browser request on behalf of another site gets 403 and changes nothing."""
    reply = http(served + "/debug?debug-logs=on", headers=headers)
    assert reply.status == 403
    assert not debug.default_switch.enabled()


def test_same_origin_browser_requests_work(served, http) -> None:
    """A same-origin browser request (or one typed in the address bar) is served."""
    host = served.removeprefix("http://")
    headers = {"Sec-Fetch-Site": "same-origin", "Origin": served, "Host": host}
    assert http(served + "/debug?debug-logs=on", headers=headers).status == 200
    assert http(served + "/debug", headers={"Sec-Fetch-Site": "none"}).status == 200


def test_auth_hook_is_consulted(wsgi_server, http) -> None:
    """The auth hook sees the request; denial or an exception answers 403."""
    seen = []

    def auth(request: debug.Request) -> bool:
        seen.append(request)
        if request.headers.get("x-raise"):
            raise RuntimeError("hook broke")
        return request.headers.get("authorization") == "Bearer s3cret"

    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux, auth=auth)
    url = wsgi_server(mux)
    assert http(url + "/debug?debug-logs=on").status == 403
    assert http(url + "/debug?debug-logs=on", headers={"X-Raise": "1"}).status == 403
    assert not debug.default_switch.enabled()
    ok = http(url + "/debug?debug-logs=on", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    assert debug.default_switch.enabled()
    assert seen[0].path == "/debug"
    assert seen[0].query == {"debug-logs": "on"}
    assert seen[0].client == "127.0.0.1"


def test_head_never_switches(served, http) -> None:
    """HEAD answers like GET but does not change the switch; POST does."""
    assert http(served + "/debug?debug-logs=on", method="HEAD").status == 200
    assert not debug.default_switch.enabled()
    assert http(served + "/debug?debug-logs=on", method="POST").status == 200
    assert debug.default_switch.enabled()


def test_other_methods_are_refused(served, http) -> None:
    """PUT or DELETE answer 405 with an Allow header."""
    reply = http(served + "/debug?debug-logs=on", method="PUT")
    assert reply.status == 405
    assert "GET" in reply.headers["Allow"]
    assert not debug.default_switch.enabled()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"path": "debug"}, "path"),
        ({"query": ""}, "query"),
        ({"on_value": "x", "off_value": "x"}, "on_value"),
        ({"duration": -1}, "duration"),
        ({"duration": 10, "max_duration": 5}, "max_duration"),
    ],
)
def test_bad_options_raise_value_error(kwargs, name) -> None:
    """Invalid options fail at mount time with a ValueError naming the option."""
    with pytest.raises(ValueError, match=name):
        debug.mount_debug_log_enabler(debug.Mux(), **kwargs)


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=40).filter(lambda v: v not in {"on", "off"}))
def test_any_other_value_is_refused(value: str) -> None:
    """No value other than on/off changes the switch; each answers 400."""
    switch = debug.DebugLogSwitch()
    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux, switch=switch)
    response = mux.dispatch(debug.Request("GET", "/debug", query={"debug-logs": value}))
    assert response.status == 400
    assert not switch.enabled()
