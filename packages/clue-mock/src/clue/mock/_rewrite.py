"""Members rewritten for the mock: every annotation, default and decorator as rendered text.

Every name is resolved to where it comes from and imported under a local name; the type
parameters of generic bases are replaced by the arguments a subclass gives them.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
from collections.abc import Callable

from clue.mock._imports import Imports
from clue.mock._literals import string_literal
from clue.mock._model import ClassScope, Member, Param, ParamKind, RawMember, Signature, Subst
from clue.mock._source import GenerationError, Loader, SourceModule

__all__ = ["Rewriter", "render_type_params", "rewrite_member", "type_param_names"]

_BUILTINS = frozenset(dir(builtins))


def rewrite_member(loader: Loader, imports: Imports, raw: RawMember) -> Member:
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
    rewriter = Rewriter(loader, imports, raw.module, raw.subst, raw.locals, scope=raw.scope)
    decorators = [_in_member(raw, raw.getter, rewriter.value, d) for d in raw.decorators]
    return Member(raw.name, "method", sig(raw.getter), decorators=decorators)


def _attribute_member(
    loader: Loader, imports: Imports, raw: RawMember, stmt: ast.AnnAssign
) -> Member:
    rewriter = Rewriter(loader, imports, raw.module, raw.subst, raw.locals, scope=raw.scope)
    annotation = _in_member(raw, stmt, rewriter.annotation, stmt.annotation)
    getter = Signature("self", False, [], annotation, False, "", rewriter.uses)
    value = Param("regular", "value", annotation, None)
    setter = Signature("self", False, [value], "None", False, "", rewriter.uses)
    return Member(raw.name, "property", getter, setter=setter)


def _in_member(
    raw: RawMember, node: ast.stmt, render: Callable[[ast.expr], str], expr: ast.expr
) -> str:
    # Rendering errors (an import that cannot be re-created) name the place and member.
    try:
        return render(expr)
    except GenerationError as exc:
        raise GenerationError(
            f"{raw.module.path}:{node.lineno}: cannot mock '{raw.scope[0]}.{raw.name}': {exc}"
        ) from None


def _signature(
    loader: Loader, imports: Imports, raw: RawMember, node: ast.FunctionDef | ast.AsyncFunctionDef
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
    loader: Loader, imports: Imports, raw: RawMember, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> Signature:
    method_locals = raw.locals | frozenset(type_param_names(node))
    rewriter = Rewriter(loader, imports, raw.module, raw.subst, method_locals, scope=raw.scope)
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
        type_params=render_type_params(rewriter, node),
        uses=rewriter.uses,
    )


class Rewriter:
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
        subst: Subst,
        locals_: frozenset[str],
        *,
        scope: ClassScope | None = None,
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
            inner = Rewriter(self._loader, self._imports, module, subst, locals_)
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


def type_param_names(node: ast.AST) -> list[str]:
    # PEP 695 ``class C[T]`` / ``def f[T]`` (Python 3.12+); empty on older syntax.
    return [p.name for p in getattr(node, "type_params", ())]


def render_type_params(rewriter: Rewriter, node: ast.AST) -> str:
    params = getattr(node, "type_params", ())
    if not params:
        return ""
    return "[" + ", ".join(ast.unparse(rewriter._copy(p, annotation=True)) for p in params) + "]"


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
