"""The import block of a generated module: one local name per imported object."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clue.mock._layout import LINE
from clue.mock._source import GenerationError

__all__ = ["Imports"]

_Key = tuple[Any, ...]  # a sort key: tuples of ints and strings


@dataclass
class _From:
    module: str
    attr: str
    local: str
    typing_only: bool


class Imports:
    """Allocates local names for imports, resolving clashes predictably.

    The first request for a name gets it; a later request for a *different* object
    under a taken name gets ``_name``, then ``name_1``, ``name_2``... Requests for the
    same object return the same local name. Names reserved up front (the generated
    classes) are never handed out.
    """

    def __init__(
        self, reserved: set[str], *, first_party: str = "", root: Path | None = None
    ) -> None:
        self._first_party = first_party
        self._root = root
        self._taken: set[str] = set(reserved)
        self._from: dict[tuple[str, str], _From] = {}
        self._plain: dict[str, tuple[list[str], bool]] = {}  # root -> (modules, typing_only)
        self._aliased: dict[str, _From] = {}  # dotted module -> (local, typing_only)
        self._second: dict[str, _From] = {}  # local -> another local for the same object

    def reserve(self, preferred: str) -> str:
        """Claim a free local name for a generated definition."""
        name = self._free(preferred)
        self._taken.add(name)
        return name

    def from_import(self, module: str, attr: str, *, typing_only: bool = False) -> str:
        """The local name of ``from module import attr`` (added on first use)."""
        return self.from_import_as(module, attr, attr, typing_only=typing_only)

    def from_import_as(
        self, module: str, attr: str, preferred: str, *, typing_only: bool = False
    ) -> str:
        """Like :meth:`from_import`, preferring the local name ``preferred``."""
        entry = self._from.get((module, attr))
        if entry is None:
            entry = _From(module, attr, self.reserve(preferred), typing_only)
            self._from[module, attr] = entry
        entry.typing_only = entry.typing_only and typing_only
        return entry.local

    def local_of(self, module: str, attr: str) -> str | None:
        """The local name of ``from module import attr`` if it was imported, else ``None``."""
        entry = self._from.get((module, attr))
        return None if entry is None else entry.local

    def module_import(self, root: str, modules: tuple[str, ...], *, typing_only: bool) -> str:
        """``import a.b`` (binding ``a``); the root name cannot be renamed."""
        entry = self._plain.get(root)
        if entry is None:
            if root in self._taken:
                raise GenerationError(
                    f"module {root!r} is imported by one interface and another name "
                    f"{root!r} by another; rename one of them with 'import ... as ...'"
                )
            self._taken.add(root)
            entry = ([], typing_only)
        names = entry[0] + [m for m in modules if m not in entry[0]]
        self._plain[root] = (names, entry[1] and typing_only)
        return root

    def module_alias(self, module: str, preferred: str, *, typing_only: bool) -> str:
        """``import a.b as preferred``."""
        entry = self._aliased.get(module)
        if entry is None:
            entry = _From(module, "", self.reserve(preferred), typing_only)
            self._aliased[module] = entry
        entry.typing_only = entry.typing_only and typing_only
        return entry.local

    def second_name(self, local: str) -> str | None:
        """Another local name for what ``local`` is bound to (typing-only), if an import.

        For annotations inside a function whose parameter shadows ``local``.
        """
        entry = self._second.get(local)
        if entry is not None:
            return entry.local
        found = next((e for e in self._from.values() if e.local == local), None)
        if found is not None:
            entry = _From(found.module, found.attr, self.reserve(f"_{local}"), typing_only=True)
        else:
            module = next((m for m, e in self._aliased.items() if e.local == local), None)
            if module is None and local in self._plain:
                module = local  # ``import a.b`` binds ``a``: ``import a as _a`` reaches it
            if module is None:
                return None
            entry = _From(module, "", self.reserve(f"_{local}"), typing_only=True)
        self._second[local] = entry
        return entry.local

    def render(self) -> list[str]:
        """The import block, grouped and sorted like isort/ruff, without trailing blanks."""
        has_typing_only = any(
            e.typing_only
            for e in (*self._from.values(), *self._aliased.values(), *self._second.values())
        )
        has_typing_only = has_typing_only or any(only for _, only in self._plain.values())
        checking = self.from_import("typing", "TYPE_CHECKING") if has_typing_only else ""
        lines = ["from __future__ import annotations"]
        for group in self._statements(typing_only=False):
            lines.append("")
            lines.extend(group)
        if checking:
            lines.extend(["", f"if {checking}:"])
            groups = self._statements(typing_only=True)
            for i, group in enumerate(groups):
                if i:
                    lines.append("")
                lines.extend(f"    {line}" for text in group for line in text.split("\n"))
        return lines

    def _statements(self, *, typing_only: bool) -> list[list[str]]:
        # isort's sections: standard library, third party, then the source's own package.
        stdlib: list[tuple[_Key, str]] = []
        other: list[tuple[_Key, str]] = []
        first: list[tuple[_Key, str]] = []

        def put(module: str, key: _Key, text: str) -> None:
            top = module.partition(".")[0]
            if top in sys.stdlib_module_names:
                stdlib.append((key, text))
            else:
                (first if self._is_first_party(top) else other).append((key, text))

        for root, (modules, only) in self._plain.items():
            if only == typing_only:
                for module in modules:
                    put(root, _module_key(0, module, "", ""), f"import {module}")
        aliased = [
            *((module, e) for module, e in self._aliased.items()),
            *((e.module, e) for e in self._second.values() if not e.attr),
        ]
        for module, entry in aliased:
            if entry.typing_only == typing_only:
                text = f"import {module} as {entry.local}"
                put(module, _module_key(0, module, "", entry.local), text)
        by_module: dict[str, list[_From]] = {}
        seconds = [e for e in self._second.values() if e.attr]
        for entry in [*self._from.values(), *seconds]:
            if entry.typing_only == typing_only:
                by_module.setdefault(entry.module, []).append(entry)
        for module, entries in by_module.items():
            ordered = sorted(entries, key=lambda e: _name_key(e.attr, e.local))
            plain = [e.attr for e in ordered if e.attr == e.local]
            if plain:
                text = _from_line(module, plain, 4 if typing_only else 0)
                put(module, _module_key(1, module, plain[0], ""), text)
            # Like isort (combine-as-imports off): each ``as`` import on its own line.
            for e in ordered:
                if e.attr != e.local:
                    text = f"from {module} import {e.attr} as {e.local}"
                    put(module, _module_key(1, module, e.attr, e.local), text)
        return [[text for _, text in sorted(group)] for group in (stdlib, other, first) if group]

    def _is_first_party(self, top: str) -> bool:
        # Like isort and ruff: the source's own package, and any module or package that
        # sits in the same source root.
        if top == self._first_party:
            return True
        root = self._root
        return root is not None and ((root / top).is_dir() or (root / f"{top}.py").is_file())

    def _free(self, preferred: str) -> str:
        candidates = [preferred, f"_{preferred.lstrip('_')}"]
        for name in candidates:
            if name not in self._taken:
                return name
        n = 1
        while f"{preferred}_{n}" in self._taken:
            n += 1
        return f"{preferred}_{n}"


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    # Natural order, case-insensitive first ("item2" < "Item10"), like ruff's isort.
    chunks = re.split(r"(\d+)", text)
    lowered = tuple((0, int(c), "") if c.isdigit() else (1, 0, c.lower()) for c in chunks if c)
    return (*lowered, (2, 0, text))


def _name_key(name: str, local: str) -> _Key:
    # isort's "order by type": CONSTANTS, then Classes, then functions and variables.
    if name.isupper() and len(name) > 1:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return (kind, _natural(name), _natural(local))


def _module_key(kind: int, module: str, first: str, local: str) -> _Key:
    # ``import x`` lines before ``from x import y`` lines, then by module, then by the
    # first imported name (ruff's order with force-sort-within-sections off).
    return (kind, _natural(module), _name_key(first, local or first) if first else ())


def _from_line(module: str, names: list[str], indent: int) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) + indent <= LINE:
        return line
    body = "\n".join(f"    {name}," for name in names)
    return f"from {module} import (\n{body}\n)"
