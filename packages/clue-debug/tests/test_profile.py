"""The CPU profile endpoint and the pprof encoder, checked by a decoder and by go tool pprof."""

from __future__ import annotations

import gzip
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import debug
from clue.debug import _profiling
from clue.debug._pprof import Frame, ProfileBuilder, encode_varint
from clue.debug._sampler import Profile, to_collapsed, to_pprof


@pytest.fixture(params=["pyspy", "builtin"])
def served(request, wsgi_server):
    """The endpoints on a loopback server, with each CPU profile backend."""
    mux = debug.Mux()
    debug.mount_pprof_handlers(mux, max_seconds=2, sampler=request.param)
    return wsgi_server(mux)


@pytest.mark.usefixtures("busy_thread")
def test_profile_finds_the_busy_thread(served, http, pprof, tmp_path, go_pprof_top) -> None:
    """A 0.5 s profile is gzipped pprof naming the busy function; go tool pprof reads it."""
    reply = http(served + "/debug/pprof/profile?seconds=0.5")
    assert reply.status == 200
    seconds = float(reply.headers["X-Clue-Profile-Seconds"])  # py-spy: whole seconds
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.body[:2] == b"\x1f\x8b"
    decoded = pprof(reply.body)
    # Linux: per-thread CPU clocks make a CPU profile beside the wall one.
    assert decoded.sample_types == [
        ("samples", "count"),
        ("wall", "nanoseconds"),
        ("cpu", "nanoseconds"),
    ]
    assert decoded.period == 10_000_000
    busy = [s for s in decoded.samples if s[2].get("thread") == "clue-busy"]
    assert busy, "no sample of the busy thread"
    assert sum(s[1][0] for s in busy) >= 5  # ~50 rounds at 100 Hz; fewer on a loaded machine
    assert any(frame[0] == "clue_busy_spin" for s in busy for frame in s[0])
    # wall is the time the rounds stood for: about the profile's length for each thread.
    busy_wall = sum(s[1][1] for s in busy)
    assert 0.8 * seconds * 1e9 <= busy_wall <= 1.2 * seconds * 1e9
    busy_cpu = sum(s[1][2] for s in busy)
    assert busy_cpu > 50_000_000  # it spins: tens of ms of CPU in 0.5 s at the very least
    sampler = reply.headers["X-Clue-Profile-Sampler"]
    assert f"sampler: {sampler}" in decoded.comments
    # The server's accept loop waits in select: far less CPU than the spinning thread.
    idle_cpu = sum(
        s[1][2] for s in decoded.samples if any(f[0] == "BaseServer.serve_forever" for f in s[0])
    )
    assert idle_cpu < busy_cpu / 5
    assert not any(s[2].get("thread") == "clue-debug-profiler" for s in decoded.samples)

    path = tmp_path / "cpu.pb.gz"
    path.write_bytes(reply.body)
    top = go_pprof_top(str(path))
    assert "Type: cpu" in top
    assert "clue_busy_spin" in top
    assert "Type: wall" in go_pprof_top(str(path), "-sample_index=wall")


@pytest.mark.usefixtures("busy_thread")
def test_go_tool_pprof_fetches_over_http(served, go_pprof_top) -> None:
    """go tool pprof fetches a profile from the endpoint itself and reports the busy function."""
    top = go_pprof_top(served + "/debug/pprof/profile", "-seconds", "1")
    assert "clue_busy_spin" in top


def test_speedscope_format(served, http, busy_thread) -> None:
    """format=speedscope is a speedscope document with one sampled profile per thread."""
    reply = http(served + "/debug/pprof/profile?seconds=0.2&format=speedscope")
    doc = json.loads(reply.body)
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    by_name = {p["name"]: p for p in doc["profiles"]}
    busy = by_name["clue-busy"]
    assert busy["type"] == "sampled"
    assert busy["unit"] == "nanoseconds"
    assert len(busy["samples"]) == len(busy["weights"])
    assert busy["endValue"] == sum(busy["weights"])
    names = {frames[i]["name"] for s in busy["samples"] for i in s}
    assert "clue_busy_spin" in names
    root_names = {frames[s[0]]["name"] for s in busy["samples"]}
    assert root_names == {"Thread._bootstrap"}


def test_collapsed_format(served, http, busy_thread) -> None:
    """format=collapsed is folded stacks: thread;root;...;leaf count."""
    reply = http(served + "/debug/pprof/profile?seconds=0.2&format=collapsed&hz=200")
    lines = reply.body.decode().splitlines()
    busy = [ln.rsplit(" ", 1) for ln in lines if ln.startswith("clue-busy;")]
    assert busy
    assert all(int(count) > 0 for _, count in busy)
    # The spinning function is the leaf of most samples (some catch it in Event.is_set).
    assert any(stack.split(";")[-1].startswith("clue_busy_spin (") for stack, _ in busy)


@pytest.mark.usefixtures("busy_thread")
def test_cpu_weighted_flame_formats(served, http) -> None:
    """weight=cpu weighs folded stacks and speedscope by CPU time: the spinning thread dominates."""
    folded = http(served + "/debug/pprof/profile?seconds=0.3&format=collapsed&weight=cpu")
    per_thread: dict[str, int] = {}
    for line in folded.body.decode().splitlines():
        stack, value = line.rsplit(" ", 1)
        thread = stack.split(";", 1)[0]
        per_thread[thread] = per_thread.get(thread, 0) + int(value)
    assert per_thread["clue-busy"] > 10_000_000  # nanoseconds of CPU
    assert per_thread["clue-busy"] == max(per_thread.values())
    doc = json.loads(
        http(served + "/debug/pprof/profile?seconds=0.2&format=speedscope&weight=cpu").body
    )
    assert doc["name"].endswith(f"(cpu, {doc['sampler']})")
    assert "clue-busy" in {p["name"] for p in doc["profiles"]}


def test_second_concurrent_profile_is_refused_at_once(served, http, poll) -> None:
    """While one profile runs, another request gets 429 immediately, and the first completes."""
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(http, served + "/debug/pprof/profile?seconds=2")
        # The first profile is running once it holds the lock.
        poll(_profiling._PROFILE_LOCK.locked)
        refused = http(served + "/debug/pprof/profile?seconds=0.01")
        assert refused.status == 429
        # Refused at once: the answer came while the first profile was still running.
        assert not first.done()
        assert refused.headers["Retry-After"] == "1"
        assert http(served + "/debug/pprof/allocs?seconds=0.01").status == 429
        assert first.result(30).status == 200
    assert http(served + "/debug/pprof/profile?seconds=0.01").status == 200


def test_duration_beyond_max_seconds_is_400(served, http) -> None:
    """seconds beyond max_seconds answers 400 naming the limit; within it, the answer
    says how long the profile ran."""
    mux = debug.Mux()
    debug.mount_pprof_handlers(mux, max_seconds=0.1, default_seconds=0.1)
    response = mux.dispatch(debug.Request("GET", "/debug/pprof/profile", query={"seconds": "3600"}))
    assert response.status == 400
    assert response.body == b"seconds must be a positive number of at most 0.1\n"
    response = mux.dispatch(debug.Request("GET", "/debug/pprof/profile", query={"seconds": "0.1"}))
    assert response.status == 200
    assert dict(response.headers)["X-Clue-Profile-Seconds"] == "0.1"


@pytest.mark.parametrize(
    "query",
    [
        "seconds=-1",
        "seconds=abc",
        "seconds=inf",
        "hz=0",
        "hz=5000",
        "format=svg",
        "weight=x",
        "sampler=perf",
        "sampler=PYSPY",
    ],
)
def test_bad_parameters_answer_400(served, http, query) -> None:
    """Invalid profile parameters answer 400 naming the parameter, without profiling."""
    reply = http(served + "/debug/pprof/profile?" + query)
    assert reply.status == 400
    assert reply.body.startswith(query.split("=")[0].encode())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prefix": "/debug/pprof"},
        {"max_seconds": 0},
        {"default_seconds": 100},
        {"default_hz": 0},
        {"sampler": "perf"},
        {"pyspy": "py-spy"},
    ],
)
def test_bad_mount_options_raise(kwargs) -> None:
    """Invalid mount options raise ValueError naming the option."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        debug.mount_pprof_handlers(debug.Mux(), **kwargs)


def test_index_links_every_profile(served, http) -> None:
    """The index page links every endpoint, with and without the trailing slash."""
    for path in ("/debug/pprof/", "/debug/pprof"):
        reply = http(served + path)
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/html")
        for name in ("profile", "heap", "allocs", "goroutine", "threads", "cmdline"):
            assert f'href="/debug/pprof/{name}"'.encode() in reply.body


def test_cross_site_profile_requests_are_refused(served, http) -> None:
    """Profiling endpoints refuse cross-site browser requests too."""
    reply = http(served + "/debug/pprof/heap", headers={"Sec-Fetch-Site": "cross-site"})
    assert reply.status == 403


def test_endpoint_failure_is_500_not_a_crash(monkeypatch, served, http) -> None:
    """An internal failure of an endpoint answers 500 and the server keeps serving."""
    from clue.debug import _profiling

    def broken() -> str:
        raise RuntimeError("stack walk failed")

    monkeypatch.setattr(_profiling, "dump_stacks", broken)
    assert http(served + "/debug/pprof/goroutine").status == 500
    assert http(served + "/debug/pprof/cmdline").status == 200


# ---- encoder properties -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(value=st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_varint_round_trips(value: int, varint) -> None:
    """encode_varint writes what a protobuf varint reader reads back (two's complement)."""
    decoded, end = varint(encode_varint(value), 0)
    assert end == len(encode_varint(value))
    assert decoded == value % 2**64


frames = st.builds(
    Frame,
    name=st.text(min_size=1, max_size=20),
    filename=st.text(max_size=20),
    first_line=st.integers(min_value=0, max_value=10**6),
    line=st.integers(min_value=0, max_value=10**6),
)


@settings(max_examples=100, deadline=None)
@given(
    samples=st.lists(
        st.tuples(
            st.lists(frames, min_size=1, max_size=6),
            st.integers(min_value=0, max_value=2**40),
            st.text(max_size=10),
        ),
        max_size=8,
    )
)
def test_profile_builder_round_trips(samples, pprof) -> None:
    """Every stack, value and label written is read back by an independent decoder."""
    builder = ProfileBuilder([("samples", "count")])
    for stack, value, thread in samples:
        builder.add(stack, [value], {"thread": thread})
    decoded = pprof(builder.encode())
    assert len(decoded.samples) == len(samples)
    for (stack, value, thread), (got_stack, got_values, labels) in zip(
        samples, decoded.samples, strict=True
    ):
        assert got_values == [value]
        assert labels == {"thread": thread}
        assert [(f[1], f[2]) for f in got_stack] == [(f.filename, f.line) for f in stack]
        for frame, got in zip(stack, got_stack, strict=True):
            assert got[0].endswith(frame.name)


@settings(max_examples=100, deadline=None)
@given(
    counts=st.dictionaries(
        st.tuples(st.text(max_size=10), st.lists(frames, min_size=1, max_size=5).map(tuple)),
        st.integers(min_value=1, max_value=1000),
        max_size=6,
    )
)
def test_collapsed_lines_parse_back(counts) -> None:
    """Each folded line splits into thread + one entry per frame and a count, totals kept."""
    profile = Profile(interval_ns=1)
    profile.counts.update(counts)
    text = to_collapsed(profile)
    assert text == "" or text.endswith("\n")
    total = 0
    for line in text.splitlines():
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        assert stack.count(";") >= 1
    assert total == sum(counts.values())
    assert len(text.splitlines()) <= len(counts)


def test_gzip_is_deterministic() -> None:
    """The same profile encodes to the same bytes (no timestamp in the gzip header)."""

    def build() -> bytes:
        b = ProfileBuilder([("samples", "count")])
        b.add([Frame("f", "a.py", 1, 2)], [3])
        return b.encode()

    assert build() == build()
    assert gzip.decompress(build())


def test_profile_excludes_the_requesting_thread(served, http, pprof) -> None:
    """The thread serving the request is not sampled (it only waits)."""
    done = threading.Event()
    reply = http(served + "/debug/pprof/profile?seconds=0.1")
    done.set()
    decoded = pprof(reply.body)
    assert not any(frame[0] == "_Endpoints.profile" for s in decoded.samples for frame in s[0])


def test_without_cpu_clock_the_profile_is_wall_clock_only(pprof) -> None:
    """Where per-thread CPU time is unreadable, the profile has samples and wall only."""
    profile = Profile(interval_ns=10)
    profile.counts[("t", (Frame("f", "a.py", 1, 2),))] = 3
    decoded = pprof(to_pprof(profile))
    assert decoded.sample_types == [("samples", "count"), ("wall", "nanoseconds")]
    assert decoded.samples[0][1] == [3, 30]
    assert any("wall clock" in c for c in decoded.comments)
