"""Shared fixtures: a fresh copy of the golden ``shop`` package, and tool runners."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GOLDEN = Path(__file__).parent / "golden"


def copy_golden(source: Path, dest: Path) -> None:
    """Copy ``*.txt`` files (stored so that linters skip them) without the suffix."""
    for path in sorted(source.rglob("*.txt")):
        target = dest / path.relative_to(source).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())


def forget_modules(prefix: str) -> None:
    """Drop ``prefix`` and its submodules from ``sys.modules``."""
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture(scope="session")
def golden() -> Path:
    """The directory of golden inputs and expected outputs."""
    return GOLDEN


@pytest.fixture(scope="session")
def update_golden() -> bool:
    """Whether to rewrite the expected files (set ``CMG_UPDATE_GOLDEN=1``)."""
    return os.environ.get("CMG_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="session")
def forget() -> Callable[[str], None]:
    """:func:`forget_modules`, for tests (conftest cannot be imported in importlib mode)."""
    return forget_modules


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Path]:
    """A fresh, importable copy of the golden ``shop`` package; returns its parent."""
    copy_golden(GOLDEN / "shop", tmp_path / "shop")
    forget_modules("shop")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    forget_modules("shop")


@pytest.fixture
def run_mypy(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[int, str]]:
    """Run ``mypy --strict`` (really: the installed mypy, in a subprocess) in a directory."""
    cache = tmp_path_factory.mktemp("mypy-cache")

    def run(cwd: Path, *paths: str) -> tuple[int, str]:
        env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
        proc = subprocess.run(
            [
                sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
                "--no-color-output", "--show-error-codes", *paths,
            ],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        return proc.returncode, proc.stdout + proc.stderr

    return run


@pytest.fixture
def cmg_script() -> Path:
    """The installed ``cmg`` console script."""
    script = Path(sys.executable).parent / ("cmg.exe" if os.name == "nt" else "cmg")
    assert script.is_file(), f"console script not installed: {script}"
    return script
