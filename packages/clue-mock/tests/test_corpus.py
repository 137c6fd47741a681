"""``cmg gen`` on real libraries: pinned wheels from PyPI, generated, type-checked, linted, run.

The wheels are downloaded inside the run (``pip download``; cached in
``$CLUE_CORPUS_CACHE`` or next to pytest's temporary directories) and unpacked into a
temporary tree that is nothing but sources: no library is installed or imported by the
generator. A download failure fails the test: the corpus is the proof.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clue.mock import Mock, UnexpectedCallError

# Pinned wheels: the libraries whose interfaces are generated, then what their modules
# import at run time (the runtime test imports the mocks, and so the libraries).
WHEELS = [
    "opentelemetry-api==1.27.0",
    "opentelemetry-sdk==1.27.0",
    "structlog==24.4.0",
    "starlette==0.41.3",
    "anyio==4.6.2.post1",
    "opentelemetry-semantic-conventions==0.48b0",
    "deprecated==1.2.14",
    "wrapt==1.17.0",
    "importlib-metadata==8.4.0",
    "zipp==3.20.2",
    "sniffio==1.3.1",
    "idna==3.10",
]
TARGETS = {
    # module target -> the generated mock module
    "opentelemetry.trace": "opentelemetry.trace.mocks",  # PEP 420: no opentelemetry/__init__
    "opentelemetry.context.context": "opentelemetry.context.mocks.context",
    "opentelemetry.propagators.textmap": "opentelemetry.propagators.mocks.textmap",
    "opentelemetry.sdk.trace.sampling": "opentelemetry.sdk.trace.mocks.sampling",
    "opentelemetry.sdk.trace.id_generator": "opentelemetry.sdk.trace.mocks.id_generator",
    "structlog.typing": "structlog.mocks.typing",
    "starlette.middleware": "starlette.middleware.mocks",
    "anyio.abc._resources": "anyio.abc.mocks._resources",
    "anyio.abc._tasks": "anyio.abc.mocks._tasks",
}
# Refused, with the reason named at its place.
REFUSED = {
    "anyio.abc._eventloop": (
        "anyio/abc/_eventloop.py:57: cannot mock 'AsyncBackend.run': an abstract class or "
        "static method cannot be programmed per mock instance"
    ),
}
# The project's lint selection; UP is left out because annotations are copied as written
# (``Optional[int]`` stays ``Optional[int]``, as in the library).
RUFF_TOML = """\
line-length = 88
target-version = "py311"
src = ["."]

[lint]
select = [
  "E", "W", "F", "I", "B", "SIM", "RUF", "C4", "PIE", "PT", "RET", "TID", "PL", "N", "S",
  "ASYNC", "T20", "PERF", "FURB",
]
ignore = ["PLR0917", "PLR0913", "PLR2004", "S101", "PLR0911", "PLR0912", "PLR0915"]
"""


def _cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One directory per Python: a wheel with compiled code is chosen for the interpreter.
    configured = os.environ.get("CLUE_CORPUS_CACHE")
    base = Path(configured) if configured else tmp_path_factory.getbasetemp().parent / "corpus"
    cache = base / f"py{sys.version_info.major}{sys.version_info.minor}"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned wheels unpacked into one temporary source tree (downloaded if needed)."""
    cache = _cache(tmp_path_factory)
    manifest = cache / "wheels.txt"
    wanted = "\n".join(WHEELS) + "\n"
    if not manifest.is_file() or manifest.read_text() != wanted:
        for stale in cache.glob("*.whl"):
            stale.unlink()
        # Downloaded aside, then moved in: a concurrent run never sees a partial wheel.
        partial = tmp_path_factory.mktemp("download")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--dest", str(partial), *WHEELS],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.fail(f"cannot download the corpus: {proc.stdout}{proc.stderr}")
        for wheel in partial.glob("*.whl"):
            os.replace(wheel, cache / wheel.name)
        manifest.write_text(wanted)
    tree = tmp_path_factory.mktemp("corpus")
    wheels = sorted(cache.glob("*.whl"))
    assert len(wheels) == len(WHEELS), wheels
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tree)
    (tree / "ruff.toml").write_text(RUFF_TOML)
    return tree


def _cmg(
    cmg_script: Path, cwd: Path, *args: str, seed: str = "0"
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": seed}
    return subprocess.run(
        [str(cmg_script), "gen", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        check=False, env=env,
    )  # fmt: skip


def _mock_files(tree: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(tree.rglob("mocks/*.py"))}


@pytest.fixture(scope="session")
def generated(corpus: Path, cmg_script_path: Path) -> dict[Path, bytes]:
    """The corpus after one ``cmg gen`` over every supported target."""
    proc = _cmg(cmg_script_path, corpus, *TARGETS)
    assert proc.returncode == 0, proc.stderr
    return _mock_files(corpus)


@pytest.fixture(scope="session")
def cmg_script_path() -> Path:
    """The installed ``cmg`` console script (session-scoped)."""
    script = Path(sys.executable).parent / ("cmg.exe" if os.name == "nt" else "cmg")
    assert script.is_file(), f"console script not installed: {script}"
    return script


def test_every_target_is_generated_under_its_import_name(
    corpus: Path, generated: dict[Path, bytes]
) -> None:
    """Each target gets a mock module whose header and imports use the source's real name."""
    for target, mock in TARGETS.items():
        path = corpus / (mock.replace(".", "/") + ".py")
        if not path.is_file():
            path = corpus / mock.replace(".", "/") / "__init__.py"
        text = generated[path].decode()
        assert text.startswith(f"# Code generated by `cmg gen {target}`; DO NOT EDIT.\n")
        assert f"from {target} import " in text, path
    # The namespace package's module is imported as itself, not as the stdlib's ``trace``.
    otel = generated[corpus / "opentelemetry/trace/mocks/__init__.py"].decode()
    assert "\nfrom trace import" not in otel


def test_refused_targets_name_file_line_and_member(corpus: Path, cmg_script_path: Path) -> None:
    """An interface cmg cannot mock is refused with its place and member; nothing is written."""
    for target, message in REFUSED.items():
        proc = _cmg(cmg_script_path, corpus, target)
        assert proc.returncode == 1
        assert message in proc.stderr, proc.stderr
        mocks = corpus / target.rpartition(".")[0].replace(".", "/") / "mocks"
        assert not (mocks / (target.rpartition(".")[2] + ".py")).exists()


def test_generated_mocks_pass_mypy_strict(
    corpus: Path, generated: dict[Path, bytes], run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """``mypy --strict`` accepts every generated mock (library internals are not judged)."""
    packages = sorted({".".join(p.parent.relative_to(corpus).parts) for p in generated})
    config = ["[mypy]", "follow_imports = silent", "explicit_package_bases = True"]
    for top in sorted({p.partition(".")[0] for p in packages}):
        config += [f"[mypy-{top}.*]", "ignore_errors = True"]
    for package in packages:
        for pattern in (package, f"{package}.*"):
            config += [f"[mypy-{pattern}]", "ignore_errors = False"]
    (corpus / "mypy.ini").write_text("\n".join(config) + "\n")
    files = [str(p.relative_to(corpus)) for p in generated]
    status, output = run_mypy(corpus, "--config-file", "mypy.ini", *files)
    assert status == 0, output


def test_generated_mocks_pass_ruff(corpus: Path, generated: dict[Path, bytes]) -> None:
    """``ruff format --check`` and ``ruff check`` (the project's rules) find nothing to change."""
    files = [str(p.relative_to(corpus)) for p in generated]
    ruff = [sys.executable, "-m", "ruff"]
    for command in ([*ruff, "format", "--check", *files], [*ruff, "check", *files]):
        proc = subprocess.run(
            command, cwd=corpus, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_second_run_changes_nothing(
    corpus: Path, generated: dict[Path, bytes], cmg_script_path: Path
) -> None:
    """Another process (another hash seed) writes the same bytes and touches no file."""
    mtimes = {p: p.stat().st_mtime_ns for p in generated}
    proc = _cmg(cmg_script_path, corpus, *TARGETS, seed="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout
    assert all(line.startswith("unchanged ") for line in proc.stdout.splitlines())
    assert _mock_files(corpus) == generated
    assert {p: p.stat().st_mtime_ns for p in generated} == mtimes


def test_hand_written_files_are_never_overwritten(
    corpus: Path, generated: dict[Path, bytes], cmg_script_path: Path, tmp_path: Path
) -> None:
    """A hand-written mock module or ``mocks/__init__.py`` stops the run; nothing is written."""
    tree = tmp_path / "tree"
    (tree / "structlog").mkdir(parents=True)
    (tree / "opentelemetry").mkdir()
    for name in ("__init__.py", "typing.py", "_frames.py"):
        (tree / "structlog" / name).write_bytes((corpus / "structlog" / name).read_bytes())
    (tree / "opentelemetry" / "trace").mkdir()
    for name in ("__init__.py", "span.py", "status.py"):
        source = corpus / "opentelemetry" / "trace" / name
        (tree / "opentelemetry" / "trace" / name).write_bytes(source.read_bytes())
    mine = {
        tree / "structlog" / "mocks" / "typing.py": b"# my own double\n",
        tree / "opentelemetry" / "trace" / "mocks" / "__init__.py": b"# mine too\n",
    }
    for path, content in mine.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
    proc = _cmg(cmg_script_path, tree, "structlog.typing", "opentelemetry.trace")
    assert proc.returncode == 1
    for path in mine:
        assert f"{path}: not generated by cmg" in proc.stderr, proc.stderr
    assert {p: p.read_bytes() for p in tree.rglob("mocks/*.py")} == mine


@pytest.fixture(scope="session")
def mock_modules(corpus: Path, generated: dict[Path, bytes]) -> Iterator[list[ModuleType]]:
    """Every generated mock module with mocks in it, imported from the corpus tree."""
    tops = {_module_of(corpus, p).partition(".")[0] for p in generated}
    saved = {n: m for n, m in sys.modules.items() if n.partition(".")[0] in tops}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(corpus))
    try:
        modules = [_import(_module_of(corpus, path)) for path in generated]
        yield [m for m in modules if any(n.endswith("Mock") for n in vars(m))]
    finally:
        sys.path.remove(str(corpus))
        for name in [n for n in sys.modules if n.partition(".")[0] in tops]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_every_mock_runs(mock_modules: list[ModuleType]) -> None:
    """Each mock: ``add_*`` serves one call in order, an unprogrammed call raises
    ``UnexpectedCallError``, ``set_*`` serves any number; async methods are awaited."""
    checked = 0
    awaited = 0
    table: dict[str, tuple[int, int, int]] = {}
    for module in mock_modules:
        mocks = [c for n, c in vars(module).items() if n.endswith("Mock") and isinstance(c, type)]
        assert mocks, module.__name__
        for cls in mocks:
            if cls.__module__ != module.__name__:
                continue
            exercised, asynchronous = _exercise(cls)
            assert exercised, f"{cls.__qualname__}: no member could be exercised"
            checked += 1
            awaited += asynchronous
            mocks_, members, asyncs = table.get(module.__name__, (0, 0, 0))
            table[module.__name__] = (mocks_ + 1, members + exercised, asyncs + asynchronous)
    # Every mock class of the pinned corpus ran; the async ones were awaited.
    assert (checked, awaited) == (17, 12), table


def test_context_manager_methods_keep_their_decorator(mock_modules: list[ModuleType]) -> None:
    """``Tracer.start_as_current_span`` (a decorated abstract method) works in ``with``."""
    (module,) = [m for m in mock_modules if m.__name__ == "opentelemetry.trace.mocks"]
    tracer = module.TracerMock()
    span = object()
    seen: list[str] = []

    def fake(name: str, *args: object, **kwargs: object) -> Iterator[object]:
        seen.append(name)
        yield span

    tracer.add_start_as_current_span(fake)
    with tracer.start_as_current_span("work") as current:
        assert current is span
    assert seen == ["work"]
    with pytest.raises(UnexpectedCallError, match=r"TracerMock\.start_as_current_span\('again'"):
        tracer.start_as_current_span("again")


def test_self_returning_methods_return_the_fakes_value(mock_modules: list[ModuleType]) -> None:
    """structlog's ``bind() -> Self``: the fake returns another mock, the mock passes it on."""
    (module,) = [m for m in mock_modules if m.__name__ == "structlog.mocks.typing"]
    logger, bound = module.FilteringBoundLoggerMock(), module.FilteringBoundLoggerMock()
    logger.add_bind(lambda **kw: bound)
    assert logger.bind(user="ann") is bound
    logger.assert_all_called()


def _exercise(cls: type) -> tuple[int, int]:
    exercised = 0
    asynchronous = 0
    helpers = [
        name
        for name, value in vars(cls).items()
        if name.startswith("add_") and (value.__doc__ or "").startswith("Expect a call to ")
    ]  # ``add_event`` may be an interface method: helpers are known by their docstring
    for helper in sorted(helpers):
        probe = cls()
        runtime = _runtime(probe)
        getattr(probe, helper)(lambda *a, **k: None)
        key = runtime.remaining()[0]
        if "." in key:
            continue  # property setters are exercised through their getter's attribute
        member = inspect.getattr_static(cls, key)
        if isinstance(member, property):
            _check_property(cls, helper, key)
            exercised += 1
            continue
        if not inspect.isfunction(member) or inspect.unwrap(member) is not member:
            continue  # decorated: see test_context_manager_methods_keep_their_decorator
        if hasattr(member, "__wrapped__") or (key.startswith("__") and key != "__call__"):
            continue
        is_async = inspect.iscoroutinefunction(member)
        _check_method(cls, helper, key, member, is_async=is_async)
        exercised += 1
        asynchronous += is_async
    return exercised, asynchronous


def _check_method(cls: type, helper: str, key: str, member: Any, *, is_async: bool) -> None:
    args, kwargs = _arguments(member)
    # ``-> None`` methods return nothing whatever the fake returns.
    result = None if inspect.signature(member).return_annotation == "None" else object()
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def fake(*a: object, **k: object) -> object:
        calls.append((a, k))
        return result

    async def async_fake(*a: object, **k: object) -> object:
        return fake(*a, **k)

    def call(mock: object) -> object:
        outcome = getattr(mock, key)(*args, **kwargs)
        return asyncio.run(outcome) if is_async else outcome

    mock = cls()
    getattr(mock, helper)(async_fake if is_async else fake)
    assert mock.has_more()
    assert call(mock) is result
    assert calls == [(tuple(args), kwargs)]
    assert not mock.has_more()
    with pytest.raises(UnexpectedCallError, match=rf"{cls.__name__}\.{key}\("):
        call(mock)
    getattr(mock, "set_" + helper.removeprefix("add_"))(async_fake if is_async else fake)
    assert call(mock) is result
    assert call(mock) is result
    mock.assert_all_called()


def _check_property(cls: type, helper: str, key: str) -> None:
    mock = cls()
    value = object()
    getattr(mock, helper)(lambda: value)
    assert getattr(mock, key) is value
    with pytest.raises(UnexpectedCallError, match=rf"{cls.__name__}\.{key}\("):
        getattr(mock, key)


def _arguments(member: Any) -> tuple[list[object], dict[str, object]]:
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for param in list(inspect.signature(member).parameters.values())[1:]:
        if param.kind in {param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD}:
            args.append(f"<{param.name}>")
        elif param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = f"<{param.name}>"
    return args, kwargs


def _runtime(mock: object) -> Mock:
    (runtime,) = [v for v in vars(mock).values() if isinstance(v, Mock)]
    return runtime


def _module_of(tree: Path, path: Path) -> str:
    parts = list(path.relative_to(tree).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import(name: str) -> ModuleType:
    return importlib.import_module(name)
