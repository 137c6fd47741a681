"""Module lookup on the file system, the way the import system does it, without importing.

``importlib.util.find_spec("a.b")`` imports ``a`` (running its ``__init__.py``) to learn
where ``a.b`` lives. ``cmg`` must never run the code it reads, so this module repeats
what the path-based finder does for plain directories: the first search path entry with
a regular package (``a/__init__.py``) or a module (``a.py``) wins; directories without
``__init__.py`` found before that are portions of a PEP 420 namespace package, used only
when no entry has a regular package or module. Submodules are looked up the same way in
their parent's directories.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Found", "find", "module_name", "search_path"]

# The path finder's suffix order: extension modules, then sources, then bytecode.
_SUFFIXES = (
    *importlib.machinery.EXTENSION_SUFFIXES,
    *importlib.machinery.SOURCE_SUFFIXES,
    *importlib.machinery.BYTECODE_SUFFIXES,
)


@dataclass(frozen=True)
class Found:
    """Where a module lives.

    Its file (``None`` for a namespace package) and, for a package, the directories its submodules
    are searched in.
    """

    origin: Path | None
    locations: tuple[Path, ...] = ()

    @property
    def is_package(self) -> bool:
        """Whether the module is a package (regular or namespace)."""
        return bool(self.locations)


def search_path() -> list[Path]:
    """The current directory (as ``python -m`` puts it first), then ``sys.path``."""
    seen: dict[Path, None] = {}
    for entry in [os.getcwd(), *sys.path]:
        path = Path(entry or os.getcwd())
        if path.is_dir():
            seen.setdefault(path.resolve(), None)
    return list(seen)


def find(name: str, path: list[Path]) -> Found | None:
    """The module ``name`` as the import system would find it on ``path``, or ``None``."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    found = _find_in(parts[0], path) or _top_level_spec(parts[0])
    for part in parts[1:]:
        if found is None or not found.is_package:
            return None
        found = _find_in(part, list(found.locations))
    return found


def module_name(file: Path, path: list[Path]) -> tuple[str, Path] | None:
    """The dotted name under which ``file`` is imported from ``path``, and its entry.

    The regular packages around ``file`` (directories with ``__init__.py``) give the
    innermost part of the name, as they always have; directories above them without
    ``__init__.py`` are PEP 420 namespace packages, and the name goes up through them to
    the first search path entry. The name must resolve back to ``file`` (a module
    shadowed by an earlier entry has no name). ``None`` when no entry leads to ``file``.
    """
    # The path as given first (a symlinked package is imported under the link's name),
    # then with links resolved.
    candidates = dict.fromkeys([Path(os.path.abspath(file)), file.resolve()])
    for candidate in candidates:
        named = _name_under(candidate, set(path), path)
        if named is not None:
            return named
    return None


def _name_under(file: Path, entries: set[Path], path: list[Path]) -> tuple[str, Path] | None:
    parts = [] if file.name == "__init__.py" else [file.stem]
    root = file.parent
    while (root / "__init__.py").is_file() and root.parent != root:
        parts.insert(0, root.name)
        root = root.parent
    while root not in entries and root.parent != root:
        parts.insert(0, root.name)
        root = root.parent
    if root not in entries or not parts or not all(part.isidentifier() for part in parts):
        return None
    name = ".".join(parts)
    found = find(name, path)
    if found is None or found.origin is None or found.origin.resolve() != file.resolve():
        return None
    return name, root


def _find_in(part: str, locations: list[Path]) -> Found | None:
    portions: list[Path] = []
    for location in locations:
        directory = location / part
        is_dir = directory.is_dir()
        if is_dir:
            for suffix in _SUFFIXES:
                init = directory / f"__init__{suffix}"
                if init.is_file():
                    return Found(init, (directory,))
        for suffix in _SUFFIXES:
            module = location / f"{part}{suffix}"
            if module.is_file():
                return Found(module)
        if is_dir:
            portions.append(directory)
    return Found(None, tuple(portions)) if portions else None


def _top_level_spec(name: str) -> Found | None:
    # Finders installed on sys.meta_path (editable installs) know modules that are not
    # on sys.path. Finding a top-level module runs no module code: no parent to import.
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    origin = Path(spec.origin) if spec.origin and spec.has_location else None
    locations = tuple(Path(p) for p in spec.submodule_search_locations or ())
    if origin is None and not locations:
        return None
    return Found(origin, locations)
