"""The py-spy backend: its command line, its fallback, its bounds and its output reader.

A stand-in ``py-spy`` (a script given as the ``pyspy`` option) plays refusal, hanging
and success; the real py-spy (a test dependency) runs in ``test_profile.py`` and
``test_profile_accuracy.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import debug
from clue.debug import _pyspy
from clue.debug._pyspy import PySpyUnavailable, _add, find_pyspy, record
from clue.debug._sampler import MAX_DEPTH, OMITTED_NAME, Profile

_FAKE = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": args, "pid": os.getpid()}}) + "\\n")
mode = {mode!r}
if mode == "refuse":
    sys.stderr.write("Error: Failed to attach: Permission Denied (os error 13)\\n"
                     "Try running again with elevated permissions by going 'sudo !!'\\n")
    sys.exit(1)
if mode == "crash":
    sys.stderr.write("Error: \\x1b[31mNo python processes found\\r\\n")
    sys.exit(2)
if mode == "follow":  # like py-spy: samples until SIGINT or until its target is gone
    import signal
    target = int(args[args.index("--pid") + 1])
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("py-spy> Sampling process 100 times a second. Press Control-C to exit.", flush=True)
    while not stop:
        try:
            os.kill(target, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
if mode == "wrapped":  # a wrapper that runs a hanging py-spy as its child, without exec
    import subprocess
    child = subprocess.Popen([sys.executable, sys.argv[0].replace("wrapped", "hang"), *args])
    with open({log!r}, "a") as f:
        f.write(json.dumps({{"argv": args, "pid": child.pid, "child": True}}) + "\\n")
    child.wait()
    sys.exit(child.returncode)
if mode == "huge":  # a line too long and more output than is read
    out = args[args.index("--output") + 1]
    with open(out, "w") as f:
        f.write("thread (11): w;clue_a (/a.py:1) 5\\n")
        f.write("thread (11): w;" + "x" * 100 + " (/l.py:1) 7\\n")
        f.write("thread (11): w;clue_b (/b.py:1) 3\\n")
        f.write("thread (11): w;clue_pad (/p.py:1) 1\\n" * 60)
        f.write("thread (11): w;clue_c (/c.py:1) 9\\n")
    sys.exit(0)
if mode == "late":  # attaches slowly (a loaded machine), then samples until SIGINT
    import signal
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    time.sleep(0.6)
    print("py-spy> Sampling process 100 times a second. Press Control-C to exit.", flush=True)
    began = time.monotonic()
    while not stop:
        time.sleep(0.005)
    with open({log!r}, "a") as f:
        f.write(json.dumps({{"sampled": time.monotonic() - began}}) + "\\n")
if mode == "hang":
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("py-spy> Sampling process 100 times a second. Press Control-C to exit.", flush=True)
    time.sleep(600)
out = args[args.index("--output") + 1]
with open(out, "w") as f:
    if "--gil" in args:
        f.write("thread (11): worker;Thread.run (/app/t.py:10);clue_hot (/app/h.py:3) 30\\n")
        f.write("thread (11): worker;Thread.run (/app/t.py:10);clue_cool (/app/h.py:9) 10\\n")
    else:
        f.write("thread (11): worker;Thread.run (/app/t.py:10);clue_hot (/app/h.py:3) 60\\n")
        f.write("thread (12): sleeper;Thread.run (/app/t.py:10);wait (/lib/threading.py:5) 100\\n")
        f.write("thread (11): worker;Thread.run (/app/t.py:10);clue_cool (/app/h.py:9) 40\\n")
"""


@pytest.fixture
def fake_pyspy(tmp_path: Path) -> Callable[[str], tuple[str, Path]]:
    """``fake_pyspy(mode) -> (path, log)``: a stand-in py-spy that logs its argv."""

    def make(mode: str) -> tuple[str, Path]:
        path = tmp_path / f"py-spy-{mode}"
        log = tmp_path / f"{mode}.log"
        path.write_text(_FAKE.format(python=sys.executable, log=str(log), mode=mode))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path), log

    return make


def _serve(wsgi_server, exe: str, sampler: str = "auto") -> str:
    mux = debug.Mux()
    debug.mount_pprof_handlers(mux, max_seconds=2, sampler=sampler, pyspy=exe)
    return wsgi_server(mux)


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_refused_ptrace_falls_back_to_the_builtin_sampler_and_says_so(
    fake_pyspy, wsgi_server, http, pprof
) -> None:
    """py-spy refused (no ptrace permission): the in-process sampler answers, labelled."""
    exe, log = fake_pyspy("refuse")
    served = _serve(wsgi_server, exe)
    reply = http(served + "/debug/pprof/profile?seconds=0.2")
    assert reply.status == 200
    assert reply.headers["X-Clue-Profile-Sampler"] == "builtin"
    assert "not permitted" in reply.headers["X-Clue-Profile-Fallback"]
    comments = pprof(reply.body).comments
    assert "sampler: builtin" in comments
    assert any("ptrace refused" in c for c in comments)
    assert _calls(log)  # it was tried
    doc = json.loads(http(served + "/debug/pprof/profile?seconds=0.1&format=speedscope").body)
    assert doc["sampler"] == "builtin"
    assert any("not permitted" in note for note in doc["notes"])


def test_sampler_pyspy_says_why_it_cannot(fake_pyspy, wsgi_server, http) -> None:
    """sampler=pyspy does not fall back: 503 with py-spy's reason, control bytes removed."""
    exe, _ = fake_pyspy("crash")
    served = _serve(wsgi_server, exe, sampler="pyspy")
    reply = http(served + "/debug/pprof/profile?seconds=0.2")
    assert reply.status == 503
    assert b"exit 2" in reply.body
    assert b"No python processes found" in reply.body
    assert b"\x1b" not in reply.body
    # The query parameter overrides the mount's choice, both ways.
    assert http(served + "/debug/pprof/profile?seconds=0.1&sampler=builtin").status == 200
    missing = _serve(wsgi_server, exe + "-absent", sampler="builtin")
    assert http(missing + "/debug/pprof/profile?seconds=0.1&sampler=pyspy").status == 503
    fallback = http(missing + "/debug/pprof/profile?seconds=0.1&sampler=auto")
    assert fallback.headers["X-Clue-Profile-Sampler"] == "builtin"
    assert "not installed" in fallback.headers["X-Clue-Profile-Fallback"]


def test_a_hanging_pyspy_is_killed_at_its_deadline(monkeypatch, fake_pyspy, tmp_path) -> None:
    """py-spy past its deadline is killed and reaped; its temporary files are removed."""
    exe, log = fake_pyspy("hang")
    monkeypatch.setattr(_pyspy, "GRACE_SECONDS", 0.5)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(PySpyUnavailable, match="did not finish"):
        record(exe, 0.1, hz=100)
    pids = [int(str(call["pid"])) for call in _calls(log)]
    assert len(pids) == 2  # cpu and wall runs
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped: no process, not even a zombie
    assert list(scratch.iterdir()) == []


_SERVER = """
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from clue import debug

class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

mux = debug.Mux()
debug.mount_pprof_handlers(mux, pyspy=sys.argv[1])
server = make_server("127.0.0.1", 0, mux, server_class=Server, handler_class=Quiet)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def test_a_server_terminated_mid_profile_leaves_no_files_nor_pyspy(
    fake_pyspy, tmp_path, poll
) -> None:
    """SIGTERM to the server while py-spy runs: py-spy ends with it, no file is left."""
    exe, log = fake_pyspy("follow")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    script = tmp_path / "server.py"
    script.write_text(_SERVER)
    env = {**os.environ, "TMPDIR": str(scratch)}
    server = subprocess.Popen(
        [sys.executable, str(script), exe], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        client = threading.Thread(
            target=_fetch_quietly,
            args=(f"http://127.0.0.1:{port}/debug/pprof/profile?seconds=30",),
            daemon=True,
        )
        client.start()
        poll(lambda: log.exists() and len(_calls(log)) == 2)
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        pids = [int(str(call["pid"])) for call in _calls(log)]
        poll(lambda: not any(_alive(pid) for pid in pids))
        assert list(scratch.iterdir()) == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


def _fetch_quietly(url: str) -> None:
    with contextlib.suppress(OSError, HTTPException):
        urllib.request.urlopen(url, timeout=60).read()


def _alive(pid: int) -> bool:
    """A process that runs (a zombie awaiting its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_a_hanging_pyspy_under_a_wrapper_is_killed_with_it(monkeypatch, fake_pyspy, poll) -> None:
    """py-spy run by a wrapper that does not exec it: the deadline kills both."""
    fake_pyspy("hang")
    exe, log = fake_pyspy("wrapped")
    monkeypatch.setattr(_pyspy, "GRACE_SECONDS", 0.5)
    with pytest.raises(PySpyUnavailable):  # the wrapper ends on SIGINT, or at the deadline
        record(exe, 0.1, hz=100)
    children = [int(str(call["pid"])) for call in _calls(log) if call.get("child")]
    assert len(children) == 2  # cpu and wall runs
    poll(lambda: not any(_alive(pid) for pid in children))


def test_huge_output_is_read_within_its_bounds(monkeypatch, fake_pyspy) -> None:
    """Output beyond ``MAX_OUTPUT_BYTES`` and lines beyond ``MAX_LINE_BYTES`` are not
    read (memory stays bounded whatever py-spy writes), and the comments say so."""
    exe, _ = fake_pyspy("huge")
    monkeypatch.setattr(_pyspy, "MAX_OUTPUT_BYTES", 1024)
    monkeypatch.setattr(_pyspy, "MAX_LINE_BYTES", 64)
    profile = record(exe, 0.1, hz=100)
    leaves = Counter()
    for (_, stack), count in profile.counts.items():
        leaves[stack[0].name] += count
    assert leaves["clue_a"] == 5
    assert leaves["clue_b"] == 3
    assert 0 < leaves["clue_pad"] < 60
    assert set(leaves) == {"clue_a", "clue_b", "clue_pad"}  # the long line and the tail left out
    assert any("lines longer than 64 bytes were not read" in note for note in profile.notes)


def test_only_validated_numbers_reach_the_command_line(
    fake_pyspy, wsgi_server, http, pprof
) -> None:
    """The argv is fixed but for the pid, rate, whole seconds and an unnamed output file."""
    exe, log = fake_pyspy("ok")
    served = _serve(wsgi_server, exe)
    hostile = "seconds=1.2&hz=7&format=pprof&weight=cpu&x=--native;rm%20-rf"
    reply = http(served + "/debug/pprof/profile?" + hostile)
    assert reply.status == 200
    assert reply.headers["X-Clue-Profile-Sampler"] == "py-spy"
    assert reply.headers["X-Clue-Profile-Seconds"] == "1.2"
    argvs = sorted((call["argv"] for call in _calls(log)), key=lambda a: "--gil" in a)
    for argv, mode in zip(argvs, ("--idle", "--gil"), strict=True):
        assert isinstance(argv, list)
        out = argv[argv.index("--output") + 1]
        assert re.fullmatch(r"/dev/fd/\d+", out)  # an unnamed file: nothing left on disk
        assert argv == [
            "record",
            *("--pid", str(os.getpid()), "--rate", "7", "--duration", "2"),  # 1.2 s, rounded up
            *("--format", "raw", "--output", out),
            *("--threads", "--full-filenames", "--nonblocking", mode),
        ]
    decoded = pprof(reply.body)
    assert "sampler: py-spy" in decoded.comments
    values = {
        (s[2]["thread"], s[0][0][0]): s[1] for s in decoded.samples
    }  # (thread, leaf) -> [samples, wall, cpu]
    assert values["worker", "clue_hot"][:2] == [60, 1_200_000_000 * 60 // 100]
    assert values["worker", "clue_cool"][:2] == [40, 1_200_000_000 * 40 // 100]
    # CPU follows the GIL samples: 30 to 10 (the stand-in's threads are not this
    # process's, so they share the CPU of threads that ended meanwhile).
    hot, cool = values["worker", "clue_hot"][2], values["worker", "clue_cool"][2]
    assert abs(hot - 3 * cool) <= 3
    # Idle stacks have wall time and no CPU.
    assert values["sleeper", "wait"] == [100, 1_200_000_000, 0]


def test_the_requesting_thread_is_left_out(fake_pyspy) -> None:
    """Samples of excluded native thread ids are dropped."""
    exe, _ = fake_pyspy("ok")
    profile = record(exe, 1, hz=100, exclude_native=[12])
    assert {thread for thread, _ in profile.counts} == {"worker"}


def test_deep_stacks_are_clipped_with_their_root() -> None:
    """py-spy's stacks deeper than MAX_DEPTH keep leaf and root, with the marker."""
    frames = ";".join(f"f{i} (/a.py:{i})" for i in range(900))
    profile = Profile(interval_ns=10_000_000, duration_ns=1_000_000_000)
    _add(profile, "wall", [f"thread (5): t;{frames} 3\n"], set())
    ((_, stack),) = profile.counts
    assert len(stack) == MAX_DEPTH
    assert stack[-1].name == "f0"  # the root
    assert stack[0].name == "f899"  # the leaf
    assert any(frame.name == OMITTED_NAME for frame in stack)
    assert profile.truncated_stacks == 1


def test_cpu_is_each_threads_clock_shared_among_its_samples() -> None:
    """A live thread's CPU goes to its samples; ended threads share the rest."""
    lines = [
        "thread (11): live;run (/a.py:1);hot (/a.py:2) 2\n",
        "thread (11): live;run (/a.py:1);cool (/a.py:3) 1\n",
        "thread (99): gone;run (/a.py:1);short (/a.py:4) 4\n",
        "thread (98): gone2;run (/a.py:1);short (/a.py:4) 1\n",
    ]
    profile = Profile(interval_ns=10_000_000, duration_ns=1_000_000_000)
    _add(profile, "cpu", lines, set(), {11: 900, 12: 50}, 500)
    cpu = {(thread, stack[0].name): ns for (thread, stack), ns in profile.cpu_ns.items()}
    assert cpu == {
        ("live", "hot"): 600,
        ("live", "cool"): 300,
        ("gone", "short"): 400,
        ("gone2", "short"): 100,
    }


def test_a_stack_read_cut_below_a_coroutine_is_completed_from_the_thread() -> None:
    """A chain read cut below a frame gets the thread's usual outer frames, and says so."""
    root = "Thread._bootstrap (/t.py:1);run_forever (/l.py:2)"
    lines = [
        f"thread (7): loop;{root};outer (/a.py:3);inner (/a.py:4);spin (/a.py:5) 9\n",
        f"thread (7): loop;{root};other (/a.py:8);inner (/a.py:4) 1\n",
        "thread (7): loop;inner (/a.py:6);spin (/a.py:5) 2\n",  # cut below inner
        "thread (7): loop;stray (/b.py:1) 1\n",  # nothing to complete it from
        f"thread (8): pool;{root};spin (/a.py:5) 4\n",
    ]
    profile = Profile(interval_ns=10_000_000, duration_ns=1_000_000_000)
    _add(profile, "wall", lines, set())
    stacks: Counter[tuple[str, ...]] = Counter()
    for (_, stack), count in profile.counts.items():
        stacks[tuple(frame.name for frame in reversed(stack))] += count
    whole = ("Thread._bootstrap", "run_forever", "outer", "inner", "spin")
    assert stacks[whole] == 9 + 2  # the cut ones completed through the usual caller
    assert stacks["stray",] == 1
    assert sum(stacks.values()) == 9 + 1 + 2 + 1 + 4
    assert any("2 samples read cut" in note for note in profile.notes)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=20))
def test_any_output_reads_without_raising(lines: list[str]) -> None:
    """Whatever the output file holds, reading it never raises."""
    profile = Profile(interval_ns=10_000_000, duration_ns=1_000_000_000)
    _add(profile, "cpu", lines, set(), {1: 10, 2: 0}, 7)
    _add(profile, "wall", lines, set())
    assert all(ns >= 0 for ns in profile.cpu_ns.values())
    assert all(ns >= 0 for ns in profile.wall_ns.values())


@settings(max_examples=200, deadline=None)
@given(
    samples=st.dictionaries(
        st.tuples(
            st.sampled_from(["a", "b-1", "MainThread"]),
            st.lists(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_.<>]{0,12}", fullmatch=True),
                min_size=1,
                max_size=6,
            ),
        ).map(lambda kv: (kv[0], tuple(kv[1]))),
        st.integers(1, 10_000),
        max_size=10,
    )
)
def test_raw_lines_parse_back(samples: dict[tuple[str, tuple[str, ...]], int]) -> None:
    """Every (thread, stack) -> count written as py-spy raw lines reads back the same
    (below each thread's one root, as a thread's stacks are)."""
    tids = {"a": 1, "b-1": 2, "MainThread": 3}
    lines = [
        f"thread ({tids[thread]}): {thread};Thread._bootstrap (/t.py:1);"
        + ";".join(f"{name} (/x/{name}.py:{i + 1})" for i, name in enumerate(stack))
        + f" {count}\n"
        for (thread, stack), count in samples.items()
    ]
    profile = Profile(interval_ns=1, duration_ns=1_000_000_000)
    _add(profile, "cpu", lines, set())
    got = {
        (thread, tuple(frame.name for frame in reversed(stack[:-1]))): ns
        for (thread, stack), ns in profile.cpu_ns.items()
    }
    assert got == samples


@pytest.mark.parametrize("path", [".", "", "bin", f"{os.pathsep}/nonexistent"])
def test_a_pyspy_found_through_a_relative_path_entry_is_not_run(
    fake_pyspy, tmp_path, monkeypatch, wsgi_server, http, path
) -> None:
    """A relative ``PATH`` entry (``.``, an empty one) names whatever directory the
    process is in: a ``py-spy`` planted there is never run."""
    exe, log = fake_pyspy("ok")
    for directory in (tmp_path, tmp_path / "bin"):
        directory.mkdir(exist_ok=True)
        planted = directory / "py-spy"
        planted.write_bytes(Path(exe).read_bytes())
        planted.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", path)
    mux = debug.Mux()
    debug.mount_pprof_handlers(mux, max_seconds=2)
    reply = http(wsgi_server(mux) + "/debug/pprof/profile?seconds=0.1&format=collapsed")
    assert reply.status == 200
    assert not log.exists()  # the planted py-spy never ran


def test_a_thread_name_with_a_line_break_forges_no_samples() -> None:
    """py-spy writes thread names as they are: a name holding a line break splits its
    line in two, whose first half would read as a stack with any count the name says.
    Such a thread's lines are left out, and the comments say so."""
    exe = find_pyspy()
    assert exe is not None, "py-spy is a test dependency of clue-debug"
    stop = threading.Event()
    hostile = "w;clue_forged (/f.py:1) 100000\nthread (1): x"
    thread = threading.Thread(target=stop.wait, name=hostile)
    thread.start()
    try:
        profile = record(exe, 0.3, hz=50)
    finally:
        stop.set()
        thread.join()
    names = {frame.name for _, stack in profile.counts for frame in stack}
    assert "clue_forged" not in names
    assert 100000 not in profile.counts.values()
    assert profile.rounds < 100000
    assert any("line break" in note for note in profile.notes)


def test_a_pyspy_that_attaches_late_samples_for_the_whole_duration(fake_pyspy) -> None:
    """py-spy attaching late (a loaded machine) still samples ``seconds``, and the profile's
    duration is what it sampled, so wall times are not scaled by time it never saw."""
    exe, log = fake_pyspy("late")
    profile = record(exe, 0.5, hz=100, cpu=False)
    sampled = [c["sampled"] for c in _calls(log) if "sampled" in c]
    assert len(sampled) == 1
    assert sampled[0] >= 0.45
    assert abs(profile.duration_ns - sampled[0] * 1e9) <= 0.1e9
