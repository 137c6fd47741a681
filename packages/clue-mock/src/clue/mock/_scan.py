"""Interfaces found in a module, with the members of their interface bases flattened in.

An interface is a class that lists ``typing.Protocol`` or ``abc.ABC`` among its bases
(or uses ``metaclass=abc.ABCMeta``), or derives from such an ABC and declares abstract
methods of its own. Members of interface bases are flattened into the interface, with
the base's type parameters replaced by the arguments the subclass gives them.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from clue.mock._imports import Imports
from clue.mock._model import Interface, RawMember, Subst
from clue.mock._rewrite import Rewriter, render_type_params, rewrite_member, type_param_names
from clue.mock._source import GenerationError, Loader, SourceModule

__all__ = ["find_interfaces"]

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


def find_interfaces(loader: Loader, module: SourceModule, imports: Imports) -> list[Interface]:
    """Every interface defined at the top level of ``module`` with members to mock."""
    found: list[Interface] = []
    for stmt in module.tree.body:
        if not isinstance(stmt, ast.ClassDef) or not _is_interface(loader, module, stmt):
            continue
        raws, taken = _flatten(loader, module, stmt, {}, frozenset(), depth=0)
        if not raws:
            continue
        class_locals = frozenset(type_param_names(stmt))
        rewriter = Rewriter(loader, imports, module, {}, class_locals)
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
        type_params = render_type_params(rewriter, stmt)
        members = [
            replace(rewrite_member(loader, imports, raw), owner=raw.scope[0]) for raw in raws
        ]
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
    subst: Subst,
    outer: frozenset[str],
    *,
    depth: int,
) -> tuple[list[RawMember], set[str]]:
    # PEP 695 parameters are local to the class, unless a subclass gives them arguments.
    locals_ = outer | (frozenset(type_param_names(cls)) - subst.keys())
    # Every method of a Protocol is a member, private ones too: the mock needs them all.
    protocol = _direct_kind(loader, module, cls) == "typing.Protocol"
    members: dict[str, RawMember] = {}
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
            raw = RawMember(stmt.name, module, subst, locals_, scope)
            _add_function(loader, module, stmt, members, raw, protocol=protocol)
        elif (
            protocol
            and isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.value is None
        ):
            raw = RawMember(stmt.target.id, module, subst, locals_, scope)
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
        base_subst: Subst = {
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
    members: dict[str, RawMember],
    new: RawMember,
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
    loader: Loader,
    module: SourceModule,
    stmt: ast.AnnAssign,
    members: dict[str, RawMember],
    new: RawMember,
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


def _class_params(loader: Loader, module: SourceModule, cls: ast.ClassDef) -> list[str]:
    declared = type_param_names(cls)
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


def _defined_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []
