"""``generate``: targets in, mock modules out (what ``cmg gen`` runs)."""

from __future__ import annotations

import ast
import importlib.machinery
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from clue.mock._finder import search_path
from clue.mock._imports import Imports
from clue.mock._render import HEADER, render_init, render_module
from clue.mock._scan import find_interfaces
from clue.mock._source import GenerationError, Loader
from clue.mock._targets import Target, is_generated, mock_directories, resolve
from clue.mock._write import write_atomic

__all__ = ["Plan", "apply", "generate", "plan"]


def generate(
    targets: Iterable[str | os.PathLike[str]], *, pytest: bool = False, write: bool = True
) -> dict[Path, str]:
    """Generate typed mocks for every Protocol and ABC interface in ``targets``.

    Each source module with interfaces gets ``mocks/<module>.py`` next to it (and a
    ``mocks/__init__.py``). Nothing is imported: modules are read with :mod:`ast` and
    found on disk the way the import system would find them (namespace packages
    included). Only files carrying the ``cmg`` header are ever overwritten.
    Mock modules that ``cmg`` generated earlier for a module that no longer has
    interfaces (or no longer exists) are removed.

    Args:
        targets: module names (``pkg.services``), ``.py`` files or directories
            (searched recursively).
        pytest: generate mocks whose constructor takes pytest's ``request`` and
            fail the test at teardown when sequenced calls remain, plus a fixture
            per mock.
        write: write the files (atomically, leaving identical files untouched);
            ``False`` only computes them.

    Returns:
        every generated file's path and content, in a stable order.

    Raises:
        GenerationError: naming each target that cannot be found, read or parsed,
            each member that cannot be mocked (``file:line: cannot mock
            'Interface.member': reason``) and each hand-written file that a mock
            would overwrite; no file is written then. Also a file that cannot be
            written (with the system's reason).

    Example:
        ``generate(["src/shop/services.py"])`` writes ``src/shop/mocks/services.py``.

    .. versionadded:: 0.1.0
    """
    result = plan(targets, pytest=pytest)
    if write:
        apply(result)
    return result.files


@dataclass(frozen=True)
class Plan:
    """What a run writes (``files``) and removes (``stale`` generated files)."""

    files: dict[Path, str]
    stale: list[Path]


def plan(targets: Iterable[str | os.PathLike[str]], *, pytest: bool) -> Plan:
    """Compute the files of a run without touching the file system."""
    errors: list[str] = []
    sources: dict[Path, Target] = {}
    seen: set[Path] = set()
    mock_dirs: set[Path] = set()
    path = search_path()
    for target in targets:
        try:
            mock_dirs.update(mock_directories(os.fspath(target), path))
            for found in resolve(os.fspath(target), path):
                # One file reached through two paths (a symlink) is generated once.
                if found.path.resolve() not in seen:
                    seen.add(found.path.resolve())
                    sources.setdefault(found.path, found)
        except GenerationError as exc:
            errors.append(str(exc))
    loader = Loader(path)
    files: dict[Path, str] = {}
    empty: list[Target] = []
    blocked: set[Path] = set()
    for source in sources.values():
        try:
            content = _module(loader, source, pytest=pytest)
        except GenerationError as exc:
            errors.append(str(exc))
            continue
        if content is None:
            empty.append(source)
        elif _not_a_directory(source.output.parent):
            # A file (or a dangling link) named ``mocks``: replacing it would lose it.
            if source.output.parent not in blocked:
                blocked.add(source.output.parent)
                errors.append(
                    f"{source.output.parent}: not a directory; refusing to replace it with "
                    f"the mocks package of {source.module} (move it away or delete it)"
                )
        elif (shadowed := _shadowed_module(source.output.parent)) is not None:
            # A package wins over a module of the same name: ``mocks.py`` would be lost.
            if source.output.parent not in blocked:
                blocked.add(source.output.parent)
                package = source.module.rpartition(".")[0]
                imported = f"{package}.mocks" if package else "mocks"
                errors.append(
                    f"{shadowed}: the mocks package of {source.module} would shadow this "
                    f"module (import {imported} would import the package); rename it"
                )
        elif source.output.exists() and not is_generated(source.output):
            # Never overwrite a file cmg did not write: it may be the user's own code.
            errors.append(
                f"{source.output}: not generated by cmg (no '{HEADER}' header); "
                f"refusing to overwrite it with the mocks of {source.module} "
                "(move it away or delete it)"
            )
        else:
            files[source.output] = content
    if errors:
        raise GenerationError("\n".join(errors))
    for output in sorted(files):
        init = output.parent / "__init__.py"
        if init not in files and _may_write(init):
            package = sources[output.parent.parent / output.name].module.rpartition(".")[0]
            files[init] = render_init(package)
    stale = _stale(sources, empty, files, mock_dirs)
    return Plan({path: files[path] for path in sorted(files)}, stale)


def apply(result: Plan) -> list[tuple[str, Path]]:
    """Write and remove what ``result`` says; returns ``(what, path)`` for each file."""
    # Checked again just before writing: a file may have been created since ``plan``.
    foreign = [path for path in result.files if path.exists() and not is_generated(path)]
    foreign += sorted({p.parent for p in result.files if _not_a_directory(p.parent)})
    if foreign:
        raise GenerationError(
            "\n".join(f"{path}: not generated by cmg; refusing to overwrite it" for path in foreign)
        )
    done: list[tuple[str, Path]] = []
    try:
        for path, content in result.files.items():
            done.append(("wrote" if write_atomic(path, content) else "unchanged", path))
        for path in result.stale:
            path.unlink(missing_ok=True)
            done.append(("removed", path))
    except OSError as exc:
        raise GenerationError(f"{exc.filename}: {exc.strerror or exc}") from exc
    return done


def _stale(
    sources: dict[Path, Target], empty: list[Target], files: dict[Path, str], mock_dirs: set[Path]
) -> list[Path]:
    # Generated mock modules whose source has no interface left, or is gone.
    stale = {s.output for s in empty if s.path.name != "__init__.py" and is_generated(s.output)}
    for directory in {s.path.parent / "mocks" for s in sources.values()} | mock_dirs:
        for path in directory.glob("*.py") if directory.is_dir() else ():
            gone = path.name != "__init__.py" and not (directory.parent / path.name).exists()
            if gone and is_generated(path):
                stale.add(path)
    return sorted(stale - set(files))


def _module(loader: Loader, source: Target, *, pytest: bool) -> str | None:
    module = loader.parse_file(source.module, source.path, source.root)
    reserved = {f"{stmt.name}Mock" for stmt in module.tree.body if isinstance(stmt, ast.ClassDef)}
    imports = Imports(reserved, first_party=source.module.partition(".")[0], root=source.root)
    interfaces = find_interfaces(loader, module, imports)
    if not interfaces:
        return None
    return render_module(source.module, interfaces, imports, pytest=pytest)


def _shadowed_module(package: Path) -> Path | None:
    # A module ``mocks.py`` (or an extension module) beside the ``mocks/`` package.
    for suffix in (*importlib.machinery.SOURCE_SUFFIXES, *importlib.machinery.EXTENSION_SUFFIXES):
        module = package.with_name(package.name + suffix)
        if module.is_file():
            return module
    return None


def _not_a_directory(path: Path) -> bool:
    # Something other than a directory (or a link to one) is there.
    return (path.exists() or path.is_symlink()) and not path.is_dir()


def _may_write(init: Path) -> bool:
    # An existing mocks/__init__.py is only rewritten if cmg wrote it.
    return not init.exists() or is_generated(init)
