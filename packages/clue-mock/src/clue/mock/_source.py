"""Python modules read as source: what each top-level name is bound to, without importing.

The generator never imports the code it reads. It parses modules with :mod:`ast` and
follows ``import`` statements from file to file, so annotations can be copied exactly as
written and every name they use can be imported again in the generated module.
"""

from __future__ import annotations

import ast
import builtins
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from clue.mock._finder import find, search_path

__all__ = ["Binding", "GenerationError", "Loader", "SourceModule", "canonical"]

_BUILTINS = frozenset(dir(builtins))
_TYPEVAR_FACTORIES = frozenset({"typing.TypeVar", "typing.ParamSpec", "typing.TypeVarTuple"})


class GenerationError(Exception):
    """A target cannot be turned into mocks; the message names the target and why.

    .. versionadded:: 0.1.0
    """


@dataclass(frozen=True)
class Binding:
    """Where a module-level name comes from.

    ``kind`` is ``"from"`` (``from module import attr``), ``"import"`` (``import
    module``; ``alias`` tells whether the name is an ``as`` alias of the whole dotted
    module or the root package of ``modules``) or ``"local"`` (defined in the module).
    """

    kind: Literal["from", "import", "local"]
    module: str
    attr: str = ""
    typing_only: bool = False
    alias: bool = False
    modules: tuple[str, ...] = ()


@dataclass
class SourceModule:
    """One parsed module: its dotted name, file, the ``sys.path`` root it lives under."""

    name: str
    path: Path
    root: Path
    tree: ast.Module
    is_package: bool = False
    bindings: dict[str, Binding] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    typevars: set[str] = field(default_factory=set)
    plain_typevars: set[str] = field(default_factory=set)  # TypeVar("T"): no bound, invariant
    stars: list[tuple[str, bool]] = field(default_factory=list)  # ``from m import *``

    @property
    def package(self) -> str:
        """The package relative imports in this module are resolved against."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def canonical(qualname: str) -> str:
    """Treat ``typing_extensions`` names as their ``typing`` counterparts."""
    if qualname.startswith("typing_extensions."):
        return "typing." + qualname.removeprefix("typing_extensions.")
    return qualname


class Loader:
    """Parses modules on demand, once each, from files under known roots."""

    def __init__(self, path: list[Path] | None = None) -> None:
        self._modules: dict[str, SourceModule | None] = {}
        self._roots: list[Path] = []
        self._path = search_path() if path is None else path

    def parse_file(self, name: str, path: Path, root: Path) -> SourceModule:
        """Parse ``path`` as module ``name``; raise :class:`GenerationError` if it fails."""
        cached = self._modules.get(name)
        if cached is not None and cached.path == path:
            return cached
        try:
            # Bytes: the parser honours a BOM and ``# -*- coding: ... -*-`` like Python does.
            text = path.read_bytes()
        except OSError as exc:
            raise GenerationError(f"cannot read {path}: {exc}") from exc
        try:
            tree = ast.parse(text, filename=str(path))
        except SyntaxError as exc:
            where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
            raise GenerationError(f"cannot parse {where}: {exc.msg}") from exc
        except ValueError as exc:  # Python 3.11: null bytes in the source
            raise GenerationError(f"cannot parse {path}: {exc}") from exc
        module = SourceModule(
            name=name, path=path, root=root, tree=tree, is_package=path.name == "__init__.py"
        )
        _collect_bindings(module, tree.body, typing_only=False)
        self._modules[name] = module
        if root not in self._roots:
            self._roots.append(root)
        for source, typing_only in module.stars:
            # What ``from source import *`` binds, as the import system binds it.
            star = self.load(source)
            for exported in _exported(star) if star is not None else ():
                binding = Binding("from", source, exported, typing_only=typing_only)
                module.bindings.setdefault(exported, binding)
        return module

    def load(self, name: str) -> SourceModule | None:
        """The module ``name`` if its source can be found and parsed, else ``None``."""
        if name in self._modules:
            return self._modules[name]
        self._modules[name] = None  # guards against import cycles while resolving
        found = self._find(name)
        if found is not None:
            path, root = found
            try:
                return self.parse_file(name, path, root)
            except GenerationError:
                self._modules[name] = None
        return None

    def qualify(self, module: SourceModule, expr: ast.expr) -> str | None:
        """The dotted name ``expr`` (a name, attribute or subscript) refers to."""
        if isinstance(expr, ast.Subscript):
            return self.qualify(module, expr.value)
        if isinstance(expr, ast.Attribute):
            base = self.qualify(module, expr.value)
            return None if base is None else canonical(f"{base}.{expr.attr}")
        if not isinstance(expr, ast.Name):
            return None
        binding = module.bindings.get(expr.id)
        if binding is None:
            return f"builtins.{expr.id}" if expr.id in _BUILTINS else None
        if binding.kind == "from":
            return canonical(f"{binding.module}.{binding.attr}")
        if binding.kind == "import":
            return binding.module if binding.alias else expr.id
        return f"{module.name}.{expr.id}"

    def find_class(self, qualname: str, depth: int = 0) -> tuple[SourceModule, ast.ClassDef] | None:
        """Locate the class definition behind a dotted name, following re-exports."""
        module_name, _, name = qualname.rpartition(".")
        module = self.load(module_name) if module_name else None
        if module is None:
            return None
        if name in module.classes:
            return module, module.classes[name]
        binding = module.bindings.get(name)
        if binding is not None and binding.kind == "from" and depth < 10:
            return self.find_class(f"{binding.module}.{binding.attr}", depth + 1)
        return None

    def is_typevar(
        self, module: SourceModule, name: str, *, plain: bool = False, depth: int = 0
    ) -> bool:
        """Whether ``name`` in ``module`` is a ``TypeVar`` (or ``ParamSpec``...).

        With ``plain``, only an invariant ``TypeVar`` without bound or constraints counts.
        """
        if name in (module.plain_typevars if plain else module.typevars):
            return True
        binding = module.bindings.get(name)
        if binding is None or binding.kind != "from" or depth >= 10:
            return False
        source = self.load(binding.module)
        return source is not None and self.is_typevar(
            source, binding.attr, plain=plain, depth=depth + 1
        )

    def _find(self, name: str) -> tuple[Path, Path] | None:
        if name.partition(".")[0] in sys.stdlib_module_names:
            return None  # interfaces are flattened from user code only
        # Roots of the targets first (a target outside the search path is named from
        # its own root), then the search path; nothing is imported.
        path = [*self._roots, *(p for p in self._path if p not in self._roots)]
        found = find(name, path)
        if found is None or found.origin is None or found.origin.suffix != ".py":
            return None
        root = found.origin.parent  # the search path entry: one level up per dotted part
        for _ in range(name.count(".") + found.is_package):
            root = root.parent
        return found.origin, root


def _collect_bindings(module: SourceModule, body: list[ast.stmt], *, typing_only: bool) -> None:
    for stmt in body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                _bind_import(module, alias, typing_only=typing_only)
        elif isinstance(stmt, ast.ImportFrom):
            source = _absolute(module, stmt)
            if source == "__future__":
                continue
            for alias in stmt.names:
                if alias.name == "*":
                    module.stars.append((source, typing_only))
                else:
                    bound = alias.asname or alias.name
                    binding = Binding("from", source, alias.name, typing_only=typing_only)
                    module.bindings.setdefault(bound, binding)
        elif isinstance(stmt, ast.ClassDef):
            module.classes.setdefault(stmt.name, stmt)
            module.bindings.setdefault(stmt.name, Binding("local", module.name, stmt.name))
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            module.bindings.setdefault(stmt.name, Binding("local", module.name, stmt.name))
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            _bind_assignment(module, stmt)
        elif type(stmt).__name__ == "TypeAlias":  # ``type X = ...`` (Python 3.12+)
            name = getattr(stmt, "name", None)
            if isinstance(name, ast.Name):
                module.bindings.setdefault(name.id, Binding("local", module.name, name.id))
        elif isinstance(stmt, ast.If):
            guarded = typing_only or _is_type_checking(stmt.test)
            _collect_bindings(module, stmt.body, typing_only=guarded)
            _collect_bindings(module, stmt.orelse, typing_only=typing_only)
        elif isinstance(stmt, ast.Try):
            _collect_bindings(module, stmt.body, typing_only=typing_only)
            for handler in stmt.handlers:
                _collect_bindings(module, handler.body, typing_only=typing_only)
            _collect_bindings(module, stmt.orelse, typing_only=typing_only)


def _exported(module: SourceModule) -> list[str]:
    # ``__all__`` when it is a literal list or tuple of strings, else the public names.
    for stmt in module.tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets)
            and isinstance(stmt.value, ast.List | ast.Tuple)
        ):
            names = [e.value for e in stmt.value.elts if isinstance(e, ast.Constant)]
            return [n for n in names if isinstance(n, str)]
    return [name for name in module.bindings if not name.startswith("_")]


def _bind_import(module: SourceModule, alias: ast.alias, *, typing_only: bool) -> None:
    if alias.asname:
        binding = Binding("import", alias.name, typing_only=typing_only, alias=True)
        module.bindings.setdefault(alias.asname, binding)
        return
    root = alias.name.partition(".")[0]
    previous = module.bindings.get(root)
    if previous is None:
        module.bindings[root] = Binding(
            "import", root, typing_only=typing_only, modules=(alias.name,)
        )
    elif previous.kind == "import" and not previous.alias and alias.name not in previous.modules:
        module.bindings[root] = Binding(
            "import",
            root,
            typing_only=previous.typing_only and typing_only,
            modules=(*previous.modules, alias.name),
        )


def _bind_assignment(module: SourceModule, stmt: ast.Assign | ast.AnnAssign) -> None:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    for name in names:
        module.bindings.setdefault(name, Binding("local", module.name, name))
    value = stmt.value
    if isinstance(value, ast.Call):
        factory = _plain_qualname(module, value.func)
        if factory is not None and canonical(factory) in _TYPEVAR_FACTORIES:
            module.typevars.update(names)
            plain = len(value.args) == 1 and not value.keywords
            if canonical(factory) == "typing.TypeVar" and plain:
                module.plain_typevars.update(names)


def _plain_qualname(module: SourceModule, expr: ast.expr) -> str | None:
    # Like Loader.qualify, for the bindings collected so far (no loading needed).
    if isinstance(expr, ast.Attribute):
        base = _plain_qualname(module, expr.value)
        return None if base is None else f"{base}.{expr.attr}"
    if isinstance(expr, ast.Name):
        binding = module.bindings.get(expr.id)
        if binding is None:
            return None
        if binding.kind == "from":
            return f"{binding.module}.{binding.attr}"
        if binding.kind == "import":
            return binding.module if binding.alias else expr.id
    return None


def _absolute(module: SourceModule, stmt: ast.ImportFrom) -> str:
    if not stmt.level:
        return stmt.module or ""
    parts = module.package.split(".") if module.package else []
    if stmt.level > 1:
        parts = parts[: len(parts) - (stmt.level - 1)]
    if stmt.module:
        parts.append(stmt.module)
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
