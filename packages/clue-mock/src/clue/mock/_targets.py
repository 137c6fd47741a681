"""Command-line targets (module paths, files, directories) resolved to source files."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from clue.mock._render import HEADER
from clue.mock._source import GenerationError

__all__ = ["Target", "is_generated", "resolve"]

_SKIPPED_DIRS = frozenset({"__pycache__", "site-packages", "node_modules"})


@dataclass(frozen=True)
class Target:
    """One source module to generate mocks for."""

    module: str
    path: Path
    root: Path

    @property
    def output(self) -> Path:
        """Where its mocks go: ``mocks/<same name>.py`` next to it."""
        return self.path.parent / "mocks" / self.path.name


def resolve(target: str) -> list[Target]:
    """The source modules a target names; :class:`GenerationError` if there are none.

    A target is a ``.py`` file, a directory (searched recursively, skipping hidden
    directories, ``__pycache__`` and generated mocks) or a dotted module name (a
    package stands for its directory).
    """
    path = Path(target)
    if path.is_file():
        if path.suffix != ".py":
            raise GenerationError(f"target {target!r}: not a Python source file (*.py)")
        return [_from_file(path)]
    if path.is_dir():
        return _from_directory(path)
    if not all(part.isidentifier() for part in target.split(".")):
        raise GenerationError(f"target {target!r}: no such file, directory or module")
    missing = GenerationError(f"target {target!r}: no such file, directory or module")
    try:
        spec = importlib.util.find_spec(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            raise missing from exc
        raise GenerationError(f"target {target!r}: cannot import module: {exc}") from exc
    except Exception as exc:  # a parent package failed to import: report why
        raise GenerationError(
            f"target {target!r}: cannot import module: {type(exc).__name__}: {exc}"
        ) from exc
    if spec is None:
        raise missing
    if spec.submodule_search_locations:
        return [t for p in spec.submodule_search_locations for t in _from_directory(Path(p))]
    if spec.origin is None or not spec.origin.endswith(".py"):
        raise GenerationError(f"target {target!r}: module has no Python source ({spec.origin})")
    return [_from_file(Path(spec.origin))]


def _from_file(path: Path) -> Target:
    path = path.resolve()
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    if not parts or not all(part.isidentifier() for part in parts):
        raise GenerationError(f"target {str(path)!r}: {'.'.join(parts)!r} is not a module name")
    return Target(".".join(parts), path, directory)


def _from_directory(directory: Path) -> list[Target]:
    found: list[Target] = []
    root = directory.resolve()
    for current, dirs, files in os.walk(root):
        here = Path(current)
        # Not sources of this project: hidden directories, caches, virtual environments.
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            path = here / name
            if name.endswith(".py") and not (
                is_generated(path) or is_generated(here / "__init__.py")
            ):
                found.append(_from_file(path))
    return found


def is_generated(path: Path) -> bool:
    """Whether ``path`` is a file ``cmg`` generated (it starts with the header)."""
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().startswith(HEADER)
    except (OSError, UnicodeDecodeError):
        return False
