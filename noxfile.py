"""Every check of the clue workspace; ``nox -l`` lists them.

Packages are discovered from ``packages/*/pyproject.toml``. Each package's trove
classifiers are its test matrix, and ``[tool.clue.test] extras`` names the extras its
tests need, so metadata and CI never disagree. Tests run against each package built as
a wheel (no workspace sources) and installed alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nox

ROOT = Path(__file__).parent
WHEELS = ROOT / ".nox" / "_wheels"

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "lint", "typecheck", "tests", "lowest", "packaging", "release_check", "integration", "docs",
]  # fmt: skip
nox.needs_version = ">=2025.2.9"


@dataclass(frozen=True)
class Package:
    """One distribution under ``packages/``."""

    path: Path
    name: str
    import_name: str
    pythons: tuple[str, ...]
    extras: tuple[str, ...]
    test_extras: tuple[str, ...]
    test_deps: tuple[str, ...]


def _load(path: Path) -> Package:
    toml = nox.project.load_toml(path / "pyproject.toml")
    project = toml["project"]
    name = project["name"]
    clue_cfg = toml.get("tool", {}).get("clue", {})
    groups = toml.get("dependency-groups", {})
    return Package(
        path=path,
        name=name,
        import_name="clue." + name.removeprefix("clue-").replace("-", "_"),
        pythons=tuple(nox.project.python_versions(toml)),
        extras=tuple(project.get("optional-dependencies", {})),
        test_extras=tuple(clue_cfg.get("test", {}).get("extras", ())),
        test_deps=tuple(groups.get("test", ())),
    )


PACKAGES = {
    p.name: p
    for p in (
        _load(d) for d in sorted((ROOT / "packages").iterdir()) if (d / "pyproject.toml").is_file()
    )
}
PYTHONS = sorted(
    {v for p in PACKAGES.values() for v in p.pythons}, key=lambda v: tuple(map(int, v.split(".")))
)
DEFAULT_PYTHON = "3.11"


_BUILT: dict[str, Path] = {}


def _wheel_cached(session: nox.Session, pkg: Package) -> Path:
    """Build (once per nox run) the package's wheel without workspace sources."""
    if pkg.name not in _BUILT:
        out = WHEELS / pkg.name
        if out.is_dir():
            shutil.rmtree(out)
        session.run(
            "uv", "build", "--wheel", "--no-sources", "--out-dir", str(out), str(pkg.path),
            external=True, silent=True,
        )  # fmt: skip
        _BUILT[pkg.name] = max(out.glob("*.whl"))
    return _BUILT[pkg.name]


def _all_wheels(session: nox.Session) -> dict[str, Path]:
    return {name: _wheel_cached(session, pkg) for name, pkg in PACKAGES.items()}


def _spec(wheel: Path, extras: tuple[str, ...]) -> str:
    return f"{wheel}[{','.join(extras)}]" if extras else str(wheel)


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff format --check and ruff check over the whole tree."""
    session.install("ruff")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session(python=DEFAULT_PYTHON)
def fmt(session: nox.Session) -> None:
    """Apply ruff's formatting and safe fixes."""
    session.install("ruff")
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources and typing examples (all extras installed)."""
    session.install("mypy", "types-requests")
    for pkg in PACKAGES.values():
        session.install("-e", _spec(pkg.path, pkg.extras), *pkg.test_deps)
    srcs = [str(p.path / "src") for p in PACKAGES.values()]
    session.env["MYPYPATH"] = os.pathsep.join(srcs)
    targets = [str(p.path / "src" / Path(*p.import_name.split("."))) for p in PACKAGES.values()]
    session.run("mypy", *targets)
    # The public API as users write it (structlog's typing_examples.py): one run per
    # package, since every package names its file the same.
    for pkg in PACKAGES.values():
        session.run("mypy", str(pkg.path / "tests" / "typing_examples.py"))


@nox.session(python=PYTHONS)
@nox.parametrize("package", [p.name for p in PACKAGES.values()])
def tests(session: nox.Session, package: str) -> None:
    """Each package as a wheel, installed alone, tested on each Python it claims."""
    pkg = PACKAGES[package]
    if session.python not in pkg.pythons:
        session.skip(f"{package} does not claim Python {session.python}")
    wheel = _wheel_cached(session, pkg)
    session.install("--reinstall-package", pkg.name, _spec(wheel, pkg.test_extras), *pkg.test_deps)
    with tempfile.TemporaryDirectory() as tmp:
        # Run from an empty directory so that only the installed wheel is importable.
        session.chdir(tmp)
        session.run(
            "python", "-m", "pytest", str(pkg.path / "tests"),
            "--import-mode=importlib", "-p", "no:cacheprovider",
            f"--rootdir={pkg.path}", "-c", str(pkg.path / "pyproject.toml"),
            *session.posargs,
        )  # fmt: skip


@nox.session(python=PYTHONS[0])
@nox.parametrize("package", [p.name for p in PACKAGES.values()])
def lowest(session: nox.Session, package: str) -> None:
    """Each package's tests against the lowest versions its metadata allows, oldest Python.

    The package's own dependencies (with the extras its tests use) are pinned to the lowest
    versions their ranges allow (uv's ``lowest-direct`` resolution); test tools and
    transitive dependencies resolve as usual. The regular ``tests`` matrix covers the
    newest versions available.
    """
    pkg = PACKAGES[package]
    project = nox.project.load_toml(pkg.path / "pyproject.toml")["project"]
    direct = list(project.get("dependencies", []))
    for extra in pkg.test_extras:
        direct += project.get("optional-dependencies", {}).get(extra, [])
    wheel = _wheel_cached(session, pkg)
    pins: list[str] = []
    if direct:
        with tempfile.TemporaryDirectory() as tmp:
            reqs = Path(tmp) / "requirements.in"
            reqs.write_text("\n".join(direct) + "\n")
            out = session.run(
                "uv", "pip", "compile", "-q", "--no-header", "--no-annotate",
                "--resolution", "lowest-direct", "--python", str(Path(session.bin) / "python"),
                str(reqs), external=True, silent=True,
            )  # fmt: skip
        names = {_req_name(r) for r in direct}
        pins = [
            line.strip()
            for line in str(out).splitlines()
            if "==" in line and _req_name(line.split("==")[0]) in names
        ]
    session.log(f"lowest versions: {', '.join(pins) or '(no dependencies)'}")
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        session.install(
            "--reinstall-package", pkg.name, "-c", str(constraints),
            _spec(wheel, pkg.test_extras), *pkg.test_deps,
        )  # fmt: skip
        session.chdir(tmp)
        session.run(
            "python", "-m", "pytest", str(pkg.path / "tests"),
            "--import-mode=importlib", "-p", "no:cacheprovider",
            f"--rootdir={pkg.path}", "-c", str(pkg.path / "pyproject.toml"),
            *session.posargs,
        )  # fmt: skip


def _req_name(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


@nox.session(python=DEFAULT_PYTHON)
def packaging(session: nox.Session) -> None:
    """Every wheel ships only clue/<name>/ and installs and imports alone."""
    wheels = _all_wheels(session)
    for name, wheel in wheels.items():
        pkg = PACKAGES[name]
        leaf = "/".join(pkg.import_name.split(".")) + "/"
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
        stray = [n for n in names if not (n.startswith(leaf) or ".dist-info/" in n)]
        if stray:
            session.error(f"{wheel.name} ships files outside {leaf}: {stray}")
        if "clue/__init__.py" in names:
            session.error(f"{wheel.name} ships clue/__init__.py; clue must stay a namespace")
        if leaf + "py.typed" not in names:
            session.error(f"{wheel.name} does not ship {leaf}py.typed")
        with tempfile.TemporaryDirectory() as tmp:
            venv = Path(tmp) / "venv"
            session.run(
                "uv",
                "venv",
                "-q",
                "-p",
                str(Path(session.bin) / "python"),
                str(venv),
                external=True,
            )
            py = venv / "bin" / "python"
            session.run("uv", "pip", "install", "-q", "-p", str(py), str(wheel), external=True)
            code = (
                f"import sys, {pkg.import_name} as m; "
                f"assert sorted(m.__all__) == list(m.__all__), 'unsorted __all__'; "
                f"assert 'grpc' not in sys.modules, 'grpc imported eagerly'; print(m.__name__)"
            )
            session.run(str(py), "-c", code, external=True)
        session.log(f"{wheel.name}: {len(names)} files, imports alone")


@nox.session(python=DEFAULT_PYTHON)
def release_check(session: nox.Session) -> None:
    """Every distribution builds, renders on PyPI and ships only its own files; workflows lint."""
    session.install("twine>=6", "check-jsonschema>=0.29", "zizmor>=1.0")
    session.run("python", str(ROOT / "tools" / "release_check.py"))


def _install_everything(session: nox.Session) -> None:
    wheels = _all_wheels(session)
    specs = [_spec(wheels[n], PACKAGES[n].extras) for n in PACKAGES]
    integ = nox.project.load_toml(ROOT / "tests-integration" / "pyproject.toml")
    session.install(*specs, *integ["project"].get("dependencies", []))
    session.install("--no-deps", "-e", str(ROOT / "tests-integration"))


@nox.session(python=DEFAULT_PYTHON)
def integration(session: nox.Session) -> None:
    """The end-to-end harness: real servers, a real OTLP receiver, the example system."""
    _install_everything(session)
    session.install("mypy")
    with session.chdir(ROOT / "tests-integration"):
        session.run("mypy", "src/clue_example", "tests")
    session.run(
        "python", "-m", "pytest", str(ROOT / "tests-integration" / "tests"),
        "--import-mode=importlib", "-p", "no:cacheprovider", *session.posargs,
    )  # fmt: skip


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site: built with warnings as errors, examples run, looked at."""
    _install_everything(session)
    session.install("sphinx>=8", "furo>=2024.8", "myst-parser>=4")
    out = ROOT / "docs" / "_build"
    session.run(
        "sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"),
        str(ROOT / "docs"), str(out / "html"),
    )  # fmt: skip
    session.run(
        "python", "-m", "pytest", str(ROOT / "docs" / "tests"),
        "--import-mode=importlib", "-p", "no:cacheprovider", *session.posargs,
    )  # fmt: skip


@nox.session(python=DEFAULT_PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: the example system under load, and its report."""
    _install_everything(session)
    session.run("python", "-m", "clue_example.demo", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks, as ratios against the named alternatives, measured in one run."""
    _install_everything(session)
    session.install(
        "orjson", "opentelemetry-instrumentation-asgi", "opentelemetry-instrumentation-wsgi"
    )
    # P7's real WSGI server and app, and P5g's gRPC comparison.
    session.install("gunicorn", "flask", "opentelemetry-instrumentation-grpc")
    session.install("py-spy")  # the reference sampler of clue-debug's profile accuracy bench
    scripts = sorted(ROOT.glob("packages/*/bench/bench_*.py"))
    wanted = set(session.posargs)
    failed = []
    for script in scripts:
        if wanted and script.stem not in wanted and script.parent.parent.name not in wanted:
            continue
        try:
            session.run("python", str(script))
        except nox.command.CommandFailed:
            failed.append(script)
    if failed:
        session.error(f"bars not met in: {[str(f.relative_to(ROOT)) for f in failed]}")
