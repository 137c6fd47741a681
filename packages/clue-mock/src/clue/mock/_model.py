"""What the scanner finds and the renderer writes: interfaces, members, signatures.

``RawMember`` is a member as the scanner finds it (its nodes and the scope they were
written in); the rewriter turns it into a ``Member`` whose annotations are rendered text.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Literal

from clue.mock._source import SourceModule

__all__ = [
    "ClassScope",
    "Interface",
    "Member",
    "Param",
    "ParamKind",
    "RawMember",
    "Signature",
    "Subst",
]

ParamKind = Literal["posonly", "regular", "vararg", "kwonly", "varkw"]


@dataclass
class Param:
    """One parameter of a mocked method, annotation and default as rendered text."""

    kind: ParamKind
    name: str
    annotation: str | None
    default: str | None


@dataclass
class Signature:
    """A mocked method's signature (without ``self``), rendered for the mock module."""

    self_name: str
    self_posonly: bool
    params: list[Param]
    returns: str | None
    is_async: bool
    type_params: str
    uses: set[str]


@dataclass
class Member:
    """A method or property of an interface, as the mock implements it."""

    name: str
    kind: Literal["method", "property", "overloaded"]
    signature: Signature
    setter: Signature | None = None
    deleter: Signature | None = None
    overloads: list[Signature] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    owner: str = ""  # the class it is written in

    @property
    def mangled(self) -> str | None:
        """The name Python gives a ``__private`` member in its class, else ``None``."""
        private = self.name.startswith("__") and not self.name.endswith("__")
        owner = self.owner.lstrip("_")
        return f"_{owner}{self.name}" if private and owner else None


@dataclass
class Interface:
    """An interface and everything its mock needs."""

    name: str
    qualname: str
    base: str
    type_params: str
    class_params: list[str]
    plain_params: set[str]
    members: list[Member]
    taken: set[str]


@dataclass
class RawMember:
    # A member before rewriting: its nodes and the scope they were written in.
    name: str
    module: SourceModule
    subst: Subst
    locals: frozenset[str]
    scope: ClassScope
    getter: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    setter: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    deleter: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    overloads: list[ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=list)
    is_property: bool = False
    attribute: ast.AnnAssign | None = None  # a Protocol's data attribute
    decorators: list[ast.expr] = field(default_factory=list)


# A type parameter of a base, replaced by the expression a subclass gives it.
Subst = dict[str, tuple[ast.expr, SourceModule, "Subst", frozenset[str]]]
# The class a member is written in, and the names its body defines (nested classes,
# class-level aliases): annotations may use them unqualified.
ClassScope = tuple[str, frozenset[str]]
