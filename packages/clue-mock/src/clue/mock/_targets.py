"""Command-line targets (module paths, files, directories) resolved to source files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clue.mock._finder import find, module_name, search_path
from clue.mock._render import HEADER
from clue.mock._source import GenerationError

__all__ = ["Target", "is_generated", "mock_directories", "resolve"]

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


def resolve(target: str, path: list[Path] | None = None) -> list[Target]:
    """The source modules a target names; :class:`GenerationError` if there are none.

    A target is a ``.py`` file, a directory (searched recursively, skipping hidden
    directories, ``__pycache__`` and generated mocks) or a dotted module name (a
    package stands for its directories), looked up on ``path`` (default: the current
    directory, then ``sys.path``) the way the import system would, without importing.
    """
    path = search_path() if path is None else path
    candidate = Path(target)
    if candidate.is_file():
        if candidate.suffix != ".py":
            raise GenerationError(f"target {target!r}: not a Python source file (*.py)")
        return [_from_file(candidate, path)]
    if candidate.is_dir():
        return _from_directory(candidate, path)
    missing = GenerationError(f"target {target!r}: no such file, directory or module")
    found = find(target, path)
    if found is None:
        raise missing
    origin = found.origin
    if origin is not None and not found.is_package:
        if origin.suffix != ".py":
            raise GenerationError(f"target {target!r}: module has no Python source ({origin})")
        return [_from_file(origin, path)]
    # A package, regular or namespace, stands for its directories.
    return [t for location in found.locations for t in _from_directory(location, path)]


def mock_directories(target: str, path: list[Path]) -> list[Path]:
    """The generated ``mocks/`` packages under a directory or package target.

    A ``mocks/`` whose sources were all deleted has no source left to lead to it; its
    stale mock modules are found this way.
    """
    candidate = Path(target)
    if candidate.is_dir():
        locations: tuple[Path, ...] = (candidate,)
    elif candidate.suffix == ".py" or (found := find(target, path)) is None:
        return []
    else:
        locations = found.locations
    return [
        here / "mocks"
        for location in locations
        for here in _walk(Path(os.path.abspath(location)))
        if is_generated(here / "mocks" / "__init__.py")
    ]


def _walk(root: Path) -> list[Path]:
    # The directories of a directory target, without what is not this project's source:
    # hidden directories, caches, virtual environments.
    found: list[Path] = []
    for current, dirs, _ in os.walk(root):
        here = Path(current)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and not (here / d / "pyvenv.cfg").exists()
        )
        found.append(here)
    return found


def _from_file(file: Path, path: list[Path]) -> Target:
    file = Path(os.path.abspath(file))  # symlinks kept: the import system keeps them
    named = module_name(file, path)
    if named is not None:
        return Target(named[0], file, named[1])
    # Outside the search path: named after the regular packages that contain it.
    parts = [] if file.name == "__init__.py" else [file.stem]
    directory = file.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    if not parts or not all(part.isidentifier() for part in parts):
        raise GenerationError(f"target {str(file)!r}: {'.'.join(parts)!r} is not a module name")
    return Target(".".join(parts), file, directory)


def _from_directory(directory: Path, path: list[Path]) -> list[Target]:
    return [
        _from_file(file, path)
        for here in _walk(Path(os.path.abspath(directory)))
        if not is_generated(here / "__init__.py")
        for file in sorted(p for p in here.iterdir() if p.is_file())
        if file.name.endswith(".py") and not is_generated(file)
    ]


def is_generated(path: Path) -> bool:
    """Whether ``path`` is a file ``cmg`` generated (it starts with the header)."""
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().startswith(HEADER)
    except (OSError, UnicodeDecodeError):
        return False
