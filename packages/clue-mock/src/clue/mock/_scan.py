"""Interfaces found in a module, flattened and with every annotation rewritten for the mock.

An interface is a class that lists ``typing.Protocol`` or ``abc.ABC`` among its bases
(or uses ``metaclass=abc.ABCMeta``), or derives from such an ABC and declares abstract
methods of its own. Members of interface bases are flattened into the interface, with
the base's type parameters replaced by the arguments the subclass gives them.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from clue.mock._imports import Imports
from clue.mock._literals import string_literal
from clue.mock._source import GenerationError, Loader, SourceModule

__all__ = ["Interface", "Member", "Param", "Signature", "find_interfaces"]

ParamKind = Literal["posonly", "regular", "vararg", "kwonly", "varkw"]
_BUILTINS = frozenset(dir(builtins))
# Special methods worth mocking: the rest (__init__, __eq__...) belong to the object.
_DUNDERS = frozenset(
    {
        "__call__", "__len__", "__iter__", "__next__", "__aiter__", "__anext__",
        "__enter__", "__exit__", "__aenter__", "__aexit__", "__getitem__", "__setitem__",
        "__delitem__", "__contains__", "__await__",
    }
)  # fmt: skip
_MARKERS = frozenset({"typing.Protocol", "typing.Generic", "abc.ABC", "builtins.object"})
_PROPERTIES = frozenset({"builtins.property", "abc.abstractproperty", "functools.cached_property"})
_SKIPPED = frozenset({"builtins.staticmethod", "builtins.classmethod", "abc.abstractclassmethod"})
_ABSTRACT = frozenset({"abc.abstractmethod", "abc.abstractproperty"})
_FINAL = frozenset({"typing.final"})
# Decorators the mock handles itself; any other decorator is applied to the mock's
# method as written (``@contextmanager`` turns the fake's generator into a context
# manager exactly as it does for the interface's implementations).
_HANDLED = _PROPERTIES | _SKIPPED | _ABSTRACT | _FINAL | {"typing.overload"}
# Special methods a mock cannot take over: they build or look up the object itself.
_OWN = frozenset(
    {
        "__init__", "__new__", "__getattribute__", "__del__", "__init_subclass__",
        "__class_getitem__", "__subclasshook__", "__set_name__", "__instancecheck__",
        "__subclasscheck__",
    }
)  # fmt: skip


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
class _Raw:
    # A member before rewriting: its nodes and the scope they were written in.
    name: str
    module: SourceModule
    subst: _Subst
    locals: frozenset[str]
    scope: _ClassScope
    getter: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    setter: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    deleter: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    overloads: list[ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=list)
    is_property: bool = False
    attribute: ast.AnnAssign | None = None  # a Protocol's data attribute
    decorators: list[ast.expr] = field(default_factory=list)


# A type parameter of a base, replaced by the expression a subclass gives it.
_Subst = dict[str, tuple[ast.expr, SourceModule, "_Subst", frozenset[str]]]
# The class a member is written in, and the names its body defines (nested classes,
# class-level aliases): annotations may use them unqualified.
_ClassScope = tuple[str, frozenset[str]]


def find_interfaces(loader: Loader, module: SourceModule, imports: Imports) -> list[Interface]:
    """Every interface defined at the top level of ``module`` with members to mock."""
    found: list[Interface] = []
    for stmt in module.tree.body:
        if not isinstance(stmt, ast.ClassDef) or not _is_interface(loader, module, stmt):
            continue
        raws, taken = _flatten(loader, module, stmt, {}, frozenset(), depth=0)
        if not raws:
            continue
        class_locals = frozenset(_type_param_names(stmt))
        rewriter = _Rewriter(loader, imports, module, {}, class_locals)
        base = rewriter.value(ast.Name(id=stmt.name))
        names = _class_params(loader, module, stmt)
        params = [rewriter.value(ast.Name(id=p)) for p in names]
        plain = {
            local
            for name, local in zip(names, params, strict=True)
            if loader.is_typevar(module, name, plain=True)
        }
        variadic = _variadic_params(loader, module, stmt)
        if params:
            shown = [
                f"*{local}" if name in variadic else local
                for name, local in zip(names, params, strict=True)
            ]
            base += "[" + ", ".join(shown) + "]"
        type_params = _render_type_params(rewriter, stmt)
        members = [replace(_member(loader, imports, raw), owner=raw.scope[0]) for raw in raws]
        found.append(
            Interface(
                name=stmt.name,
                qualname=f"{module.name}.{stmt.name}",
                base=base,
                type_params=type_params,
                class_params=params,
                plain_params=plain,
                members=members,
                taken=taken,
            )
        )
    return found


def _is_interface(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> bool:
    if _direct_kind(loader, module, cls) is not None:
        return True
    return _has_own_abstract(loader, module, cls) and _abc_derived(loader, module, cls, 0)


def _direct_kind(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> str | None:
    for base in cls.bases:
        qualname = loader.qualify(module, base)
        if qualname in {"typing.Protocol", "abc.ABC"}:
            return qualname
    for keyword in cls.keywords:
        if keyword.arg == "metaclass" and loader.qualify(module, keyword.value) == "abc.ABCMeta":
            return "abc.ABC"
    return None


def _abc_derived(loader: Loader, module: SourceModule, cls: ast.ClassDef, depth: int) -> bool:
    if _direct_kind(loader, module, cls) == "abc.ABC":
        return True
    for base in cls.bases:
        qualname = loader.qualify(module, base)
        found = loader.find_class(qualname) if qualname and depth < 20 else None
        if found is not None and _abc_derived(loader, *found, depth + 1):
            return True
    return False


def _has_own_abstract(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> bool:
    return any(
        loader.qualify(module, d) in _ABSTRACT
        for stmt in cls.body
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
        for d in stmt.decorator_list
    )


def _flatten(
    loader: Loader,
    module: SourceModule,
    cls: ast.ClassDef,
    subst: _Subst,
    outer: frozenset[str],
    *,
    depth: int,
) -> tuple[list[_Raw], set[str]]:
    # PEP 695 parameters are local to the class, unless a subclass gives them arguments.
    locals_ = outer | (frozenset(_type_param_names(cls)) - subst.keys())
    # Every method of a Protocol is a member, private ones too: the mock needs them all.
    protocol = _direct_kind(loader, module, cls) == "typing.Protocol"
    members: dict[str, _Raw] = {}
    taken: set[str] = set()
    scope_names = {
        name
        for stmt in cls.body
        if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
        for name in _defined_names(stmt)
    }
    scope = (cls.name, frozenset(scope_names))
    for stmt in cls.body:
        taken.update(_defined_names(stmt))
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            raw = _Raw(stmt.name, module, subst, locals_, scope)
            _add_function(loader, module, stmt, members, raw, protocol=protocol)
        elif (
            protocol
            and isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.value is None
        ):
            raw = _Raw(stmt.target.id, module, subst, locals_, scope)
            _add_attribute(loader, module, stmt, members, raw)
    for base in cls.bases:
        qualname = loader.qualify(module, base)
        if qualname is None or qualname in _MARKERS or depth > 20:
            continue
        found = loader.find_class(qualname)
        if found is None or not _is_interface_base(loader, *found):
            continue
        base_module, base_cls = found
        names = _class_params(loader, base_module, base_cls)
        variadic = _variadic_params(loader, base_module, base_cls)
        base_subst: _Subst = {
            name: (arg, module, subst, locals_)
            for name, arg in _bind_params(names, variadic, _subscript_args(base))
        }
        inherited, base_taken = _flatten(
            loader, base_module, base_cls, base_subst, frozenset(), depth=depth + 1
        )
        taken |= base_taken
        for raw in inherited:
            members.setdefault(raw.name, raw)
    return list(members.values()), taken


def _is_interface_base(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> bool:
    return _direct_kind(loader, module, cls) is not None or _abc_derived(loader, module, cls, 0)


def _add_function(
    loader: Loader,
    module: SourceModule,
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    members: dict[str, _Raw],
    new: _Raw,
    *,
    protocol: bool,
) -> None:
    kinds = set()
    abstract = False
    others: list[ast.expr] = []
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Attribute) and decorator.attr in {"setter", "deleter"}:
            kinds.add(decorator.attr)
            continue
        qualname = loader.qualify(module, decorator) or ""
        if qualname in _SKIPPED:
            kinds.add("static")
        if qualname in _FINAL:
            return  # a final method cannot be overridden: the interface's own is used
        if qualname in _PROPERTIES:
            kinds.add("property")
        if qualname == "typing.overload":
            kinds.add("overload")
        if qualname not in _HANDLED:
            others.append(decorator)
        abstract = abstract or qualname in _ABSTRACT
    name = node.name
    # A Protocol member with a trivial body is abstract for type checkers too.
    required = abstract or (protocol and _trivial(node) and "overload" not in kinds)
    if "static" in kinds:
        if required:
            where = f"{module.path}:{node.lineno}"
            raise GenerationError(
                f"{where}: cannot mock '{new.scope[0]}.{name}': an abstract class or static "
                "method cannot be programmed per mock instance; give it an implementation "
                "in the interface or leave it out"
            )
        return
    if name == "__init_subclass__" and (required_args := _required_arguments(node)):
        # ``class PluginMock(Plugin):`` passes nothing: Python and mypy both reject it.
        listed = ", ".join(repr(a) for a in required_args)
        raise GenerationError(
            f"{module.path}:{node.lineno}: cannot mock '{new.scope[0]}.{name}': "
            f"a subclass must pass it {listed}, and a mock class passes nothing"
        )
    if name in _OWN:
        # The mock's own ``__init__`` implements an abstract one; a trivial ``__new__`` in
        # a Protocol is not abstract for type checkers.
        if name != "__init__" and (abstract or (required and name != "__new__")):
            raise GenerationError(
                f"{module.path}:{node.lineno}: cannot mock '{new.scope[0]}.{name}': "
                f"a mock cannot take over {name}"
            )
        return
    if not _mockable(name, abstract=abstract or protocol, required=required):
        return
    raw = members.setdefault(name, new)
    if "deleter" in kinds:
        raw.deleter = node
    elif "setter" in kinds:
        raw.setter = node
    elif "overload" in kinds:
        raw.overloads.append(node)
    else:
        raw.getter = node  # a redefinition replaces the earlier one, as in Python
        raw.decorators = others
    if "property" in kinds:
        raw.is_property = True


def _add_attribute(
    loader: Loader, module: SourceModule, stmt: ast.AnnAssign, members: dict[str, _Raw], new: _Raw
) -> None:
    # ``name: T`` in a Protocol is a member every implementation must provide.
    annotation = stmt.annotation
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if loader.qualify(module, annotation) in {"typing.ClassVar", "typing.Final"}:
        raise GenerationError(
            f"{module.path}:{stmt.lineno}: cannot mock '{new.scope[0]}.{new.name}': "
            "a class variable without a value cannot be programmed per mock instance; "
            "give it a value in the interface"
        )
    new.attribute = stmt
    members.setdefault(new.name, new)


def _trivial(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    # ``...``, ``pass``, a docstring or ``raise NotImplementedError``: no implementation.
    body = list(node.body)
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        body = body[1:] if isinstance(first.value.value, str) else body
    if not body:
        return True
    if len(body) != 1:
        return False
    stmt = body[0]
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return stmt.value.value is Ellipsis
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _required_arguments(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    # The parameters after ``cls`` that have no default.
    args = node.args
    positional = [*args.posonlyargs, *args.args][1:]
    without = positional[: max(len(positional) - len(args.defaults), 0)]
    kwonly = [a for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    return [a.arg for a in [*without, *kwonly]]


def _mockable(name: str, *, abstract: bool, required: bool) -> bool:
    if name.startswith("__") and name.endswith("__"):
        return name in _DUNDERS or required
    return not name.startswith("_") or abstract


def _member(loader: Loader, imports: Imports, raw: _Raw) -> Member:
    def sig(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Signature:
        return _signature(loader, imports, raw, node)

    if raw.attribute is not None:
        return _attribute_member(loader, imports, raw, raw.attribute)
    if raw.is_property and raw.getter is not None:
        setter = sig(raw.setter) if raw.setter is not None else None
        deleter = sig(raw.deleter) if raw.deleter is not None else None
        return Member(raw.name, "property", sig(raw.getter), setter=setter, deleter=deleter)
    if raw.overloads:
        variants = [sig(node) for node in raw.overloads]
        impl = sig(raw.getter) if raw.getter is not None else variants[0]
        return Member(raw.name, "overloaded", impl, overloads=variants)
    if raw.getter is None:
        accessor = raw.setter or raw.deleter
        line = accessor.lineno if accessor is not None else 0
        what = "setter" if raw.setter is not None else "deleter"
        raise GenerationError(
            f"{raw.module.path}:{line}: cannot mock '{raw.scope[0]}.{raw.name}': "
            f"a property {what} without a getter"
        )
    rewriter = _Rewriter(loader, imports, raw.module, raw.subst, raw.locals, scope=raw.scope)
    decorators = [_in_member(raw, raw.getter, rewriter.value, d) for d in raw.decorators]
    return Member(raw.name, "method", sig(raw.getter), decorators=decorators)


def _attribute_member(loader: Loader, imports: Imports, raw: _Raw, stmt: ast.AnnAssign) -> Member:
    rewriter = _Rewriter(loader, imports, raw.module, raw.subst, raw.locals, scope=raw.scope)
    annotation = _in_member(raw, stmt, rewriter.annotation, stmt.annotation)
    getter = Signature("self", False, [], annotation, False, "", rewriter.uses)
    value = Param("regular", "value", annotation, None)
    setter = Signature("self", False, [value], "None", False, "", rewriter.uses)
    return Member(raw.name, "property", getter, setter=setter)


def _in_member(raw: _Raw, node: ast.stmt, render: Callable[[ast.expr], str], expr: ast.expr) -> str:
    # Rendering errors (an import that cannot be re-created) name the place and member.
    try:
        return render(expr)
    except GenerationError as exc:
        raise GenerationError(
            f"{raw.module.path}:{node.lineno}: cannot mock '{raw.scope[0]}.{raw.name}': {exc}"
        ) from None


def _signature(
    loader: Loader, imports: Imports, raw: _Raw, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> Signature:
    try:
        return _signature_of(loader, imports, raw, node)
    except GenerationError as exc:
        if str(exc).startswith(f"{raw.module.path}:"):
            raise
        raise GenerationError(
            f"{raw.module.path}:{node.lineno}: cannot mock '{raw.scope[0]}.{raw.name}': {exc}"
        ) from None


def _signature_of(
    loader: Loader, imports: Imports, raw: _Raw, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> Signature:
    method_locals = raw.locals | frozenset(_type_param_names(node))
    rewriter = _Rewriter(loader, imports, raw.module, raw.subst, method_locals, scope=raw.scope)
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if not positional:
        raise GenerationError("the method has no self parameter")
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults.extend(args.defaults)
    params: list[Param] = []
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        if index:
            kind: ParamKind = "posonly" if index < len(args.posonlyargs) else "regular"
            params.append(rewriter.param(kind, arg, default))
    if args.vararg is not None:
        params.append(rewriter.param("vararg", args.vararg, None))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(rewriter.param("kwonly", arg, kw_default))
    if args.kwarg is not None:
        params.append(rewriter.param("varkw", args.kwarg, None))
    stub = any(loader.qualify(raw.module, d) == "typing.overload" for d in node.decorator_list)
    for param in params:
        if param.default == "..." and not stub:
            raise GenerationError(
                f"parameter {param.name!r} has the stub default '...'; the mock must pass "
                "a real value to the fake: write the real default in the interface"
            )
    returns = rewriter.annotation(node.returns) if node.returns is not None else None
    is_async = isinstance(node, ast.AsyncFunctionDef) and not _is_generator(node)
    return Signature(
        self_name=positional[0].arg,
        self_posonly=bool(args.posonlyargs),
        params=params,
        returns=returns,
        is_async=is_async,
        type_params=_render_type_params(rewriter, node),
        uses=rewriter.uses,
    )


class _Rewriter:
    """Rewrites expressions written in one module so that they mean the same in the mock.

    Every name is resolved to where it comes from and imported under a local name;
    type parameters of generic bases are replaced by their arguments; string forward
    references are rewritten inside the string; string literals use double quotes.
    """

    def __init__(
        self,
        loader: Loader,
        imports: Imports,
        module: SourceModule,
        subst: _Subst,
        locals_: frozenset[str],
        *,
        scope: _ClassScope | None = None,
    ) -> None:
        self._loader = loader
        self._imports = imports
        self._module = module
        self._subst = subst
        self._locals = locals_
        self._scope = scope
        self.uses: set[str] = set()

    def param(self, kind: ParamKind, arg: ast.arg, default: ast.expr | None) -> Param:
        annotation = self.annotation(arg.annotation) if arg.annotation is not None else None
        value = self.value(default) if default is not None else None
        return Param(kind, arg.arg, annotation, value)

    def annotation(self, node: ast.expr) -> str:
        return ast.unparse(self._expr(node, annotation=True))

    def value(self, node: ast.expr) -> str:
        return ast.unparse(self._expr(node, annotation=False))

    def _expr(self, node: ast.expr, *, annotation: bool) -> ast.expr:
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            if annotation and isinstance(node.value, str):
                return ast.Name(id=self._forward_ref(node.value))
            return ast.Name(id=string_literal(node.value))
        if isinstance(node, ast.Subscript):
            qualname = self._loader.qualify(self._module, node.value)
            if qualname == "typing.Literal":
                return ast.Subscript(
                    value=self._expr(node.value, annotation=annotation),
                    slice=self._expr(node.slice, annotation=False),
                )
            if qualname == "typing.Annotated" and isinstance(node.slice, ast.Tuple):
                first, *rest = node.slice.elts
                elts = [
                    self._expr(first, annotation=True),
                    *(self._expr(e, annotation=False) for e in rest),
                ]
                return ast.Subscript(
                    value=self._expr(node.value, annotation=annotation),
                    slice=ast.Tuple(elts=elts),
                )
        return self._copy(node, annotation=annotation)

    def _copy(self, node: ast.AST, *, annotation: bool) -> ast.expr:
        new = copy.copy(node)
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.AST):
                setattr(new, name, self._any(value, annotation=annotation))
            elif isinstance(value, list):
                items = [
                    self._any(v, annotation=annotation) if isinstance(v, ast.AST) else v
                    for v in value
                ]
                setattr(new, name, items)
        return new  # type: ignore[return-value]  # an expr's copy is an expr

    def _any(self, node: ast.AST, *, annotation: bool) -> ast.AST:
        if isinstance(node, ast.expr):
            return self._expr(node, annotation=annotation)
        return self._copy(node, annotation=annotation)

    def _name(self, node: ast.Name) -> ast.expr:
        name = node.id
        if name in self._locals:
            self.uses.add(name)
            return ast.Name(id=name)
        if name in self._subst:
            expr, module, subst, locals_ = self._subst[name]
            if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
                # A forward reference moved into another annotation needs no quotes:
                # generated modules never evaluate annotations.
                with contextlib.suppress(SyntaxError):
                    expr = ast.parse(expr.value.strip(), mode="eval").body
            inner = _Rewriter(self._loader, self._imports, module, subst, locals_)
            result = inner._expr(expr, annotation=True)
            self.uses |= inner.uses
            return result
        if self._scope is not None and name in self._scope[1]:
            # ``Kind`` defined in the interface's body is ``Interface.Kind`` in the mock.
            owner = self._resolve(self._scope[0])
            self.uses.add(owner)
            return ast.Attribute(value=ast.Name(id=owner), attr=name)
        local = self._resolve(name)
        self.uses.add(local)
        return ast.Name(id=local)

    def _resolve(self, name: str) -> str:
        module = self._module
        binding = module.bindings.get(name)
        if binding is None:
            if name in _BUILTINS:
                return name
            # A star import or a dynamic definition: the module itself provides it.
            return self._imports.from_import(module.name, name)
        if binding.kind == "local":
            return self._imports.from_import(module.name, name)
        if binding.kind == "from":
            return self._imports.from_import_as(
                binding.module, binding.attr, name, typing_only=binding.typing_only
            )
        if binding.alias:
            return self._imports.module_alias(binding.module, name, typing_only=binding.typing_only)
        return self._imports.module_import(name, binding.modules, typing_only=binding.typing_only)

    def _forward_ref(self, text: str) -> str:
        try:
            inner = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            return string_literal(text)
        rendered = ast.unparse(self._expr(inner, annotation=True))
        return f'"{rendered}"' if '"' not in rendered else string_literal(rendered)


def _class_params(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> list[str]:
    declared = _type_param_names(cls)
    if declared:
        return declared
    for base in cls.bases:
        if isinstance(base, ast.Subscript):
            qualname = loader.qualify(module, base.value)
            if qualname in {"typing.Generic", "typing.Protocol"}:
                args = [_unpacked(loader, module, e) or e for e in _subscript_args(base)]
                return [e.id for e in args if isinstance(e, ast.Name)]
    params: list[str] = []
    for base in cls.bases:
        for arg in _subscript_args(base):
            for node in ast.walk(arg):
                if (
                    isinstance(node, ast.Name)
                    and node.id not in params
                    and loader.is_typevar(module, node.id)
                ):
                    params.append(node.id)
    return params


def _bind_params(
    names: list[str], variadic: set[str], args: list[ast.expr]
) -> list[tuple[str, ast.expr]]:
    # A base's type parameters and the arguments a subclass gives them; a variadic
    # one (``*Ts``) takes what the others leave, as the tuple it stands for.
    index = next((i for i, name in enumerate(names) if name in variadic), None)
    if index is None or len(args) < len(names) - 1:
        return list(zip(names, args, strict=False))
    after = len(names) - index - 1
    taken = args[index : len(args) - after]
    if len(taken) == 1 and isinstance(taken[0], ast.Starred):
        packed: ast.expr = taken[0].value
    else:
        packed = ast.Subscript(
            value=ast.Name(id="tuple"), slice=ast.Tuple(elts=taken or [ast.Tuple(elts=[])])
        )
    return [
        *zip(names[:index], args[:index], strict=True),
        (names[index], packed),
        *zip(names[index + 1 :], args[len(args) - after :], strict=True),
    ]


def _variadic_params(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> set[str]:
    # The class's ``TypeVarTuple`` parameters: ``Generic[*Ts]``, ``Base[Unpack[Ts]]``...
    # (``ast.TypeVarTuple``, the PEP 695 ``class C[*Ts]`` node, is Python 3.12+.)
    declared = getattr(cls, "type_params", ())
    found = {p.name for p in declared if type(p).__name__ == "TypeVarTuple"}
    for base in cls.bases:
        for arg in _subscript_args(base):
            name = _unpacked(loader, module, arg)
            if name is not None and loader.is_typevar(module, name.id):
                found.add(name.id)
    return found


def _unpacked(loader: Loader, module: SourceModule, node: ast.expr) -> ast.Name | None:
    # ``*Ts`` or ``Unpack[Ts]``: the name ``Ts``.
    if isinstance(node, ast.Starred) and isinstance(node.value, ast.Name):
        return node.value
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Name)
        and loader.qualify(module, node.value) == "typing.Unpack"
    ):
        return node.slice
    return None


def _subscript_args(base: ast.expr) -> list[ast.expr]:
    if not isinstance(base, ast.Subscript):
        return []
    if isinstance(base.slice, ast.Tuple):
        return list(base.slice.elts)
    return [base.slice]


def _type_param_names(node: ast.AST) -> list[str]:
    # PEP 695 ``class C[T]`` / ``def f[T]`` (Python 3.12+); empty on older syntax.
    return [p.name for p in getattr(node, "type_params", ())]


def _render_type_params(rewriter: _Rewriter, node: ast.AST) -> str:
    params = getattr(node, "type_params", ())
    if not params:
        return ""
    return "[" + ", ".join(ast.unparse(rewriter._copy(p, annotation=True)) for p in params) + "]"


def _defined_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _is_generator(node: ast.AsyncFunctionDef) -> bool:
    # ``async def`` with ``yield`` is an async generator: calling it is not awaited.
    todo: list[ast.AST] = list(node.body)
    while todo:
        current = todo.pop()
        if isinstance(current, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(current))
    return False
