"""Sphinx configuration of the clue documentation site (``nox -s docs``).

The package guides are the packages' READMEs, included as they are (one source, no second
copy that can drift); the API reference is generated from the docstrings of every name in
each package's ``__all__``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent

project = "clue for Python"
author = "the clue authors"
copyright = "2026, the clue authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4
html_theme = "furo"
html_title = "clue for Python"
html_static_path: list[str] = []

autodoc_default_options = {"show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
# Methods overriding a third-party base (requests' HTTPAdapter, httpx's transports) would
# inherit docstrings written for another site's cross-references.
autodoc_inherit_docstrings = False
napoleon_use_ivar = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# No network at build time: intersphinx inventories are not fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
suppress_warnings = ["myst.header"]

# The guides are the packages' READMEs, copied into ``guides/`` (not committed) at the
# start of every build. Their links point at sibling packages' folders (``../clue-otel``)
# and at the repository's README; on the site those become the matching pages.
GUIDES = Path(__file__).resolve().parent / "guides"
_PACKAGE_LINK = re.compile(r"\]\((?:\.\./)+(?:packages/)?(clue-[a-z]+)/?(?:README\.md)?(#[^)]*)?\)")
_ROOT_README = re.compile(r"\]\((?:\.\./)+README\.md(#[^)]*)?\)")


def _write_guides(app: Sphinx, config: object) -> None:
    GUIDES.mkdir(exist_ok=True)
    for readme in sorted((ROOT / "packages").glob("clue-*/README.md")):
        text = readme.read_text(encoding="utf-8")
        text = _PACKAGE_LINK.sub(lambda m: f"]({m.group(1)}.md{m.group(2) or ''})", text)
        text = _ROOT_README.sub(lambda m: f"](../index.md{m.group(1) or ''})", text)
        target = GUIDES / f"{readme.parent.name}.md"
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


# The API reference: one page per package, one entry per name of the ``__all__`` of the
# package and of each of its public submodules (names loaded lazily for an extra
# included), written at the start of every build.
REFERENCE = Path(__file__).resolve().parent / "reference"
PACKAGES = ("log", "otel", "health", "debug", "mock", "interceptors")


def _directive(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def public_modules(name: str) -> list[str]:
    """``clue.<name>`` and its public submodules (``clue.log.testing``, ``clue.health.grpc``)."""
    package = importlib.import_module(f"clue.{name}")
    subs = sorted(
        f"clue.{name}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )
    return [f"clue.{name}", *subs]


def _write_reference(app: Sphinx, config: object) -> None:
    REFERENCE.mkdir(exist_ok=True)
    pages = {"index": _REFERENCE_INDEX}
    for name in PACKAGES:
        lines = [f"# `clue.{name}`", ""]
        for dotted in public_modules(name):
            module = importlib.import_module(dotted)
            if dotted != f"clue.{name}":
                lines += [f"## `{dotted}`", ""]
            lines += ["```{eval-rst}", f".. automodule:: {dotted}", ""]
            for public in module.__all__:
                directive = _directive(getattr(module, public))
                lines.append(f".. {directive}:: {dotted}.{public}")
                if directive == "autoclass":
                    lines.append("   :members:")
                lines.append("")
            lines += ["```", ""]
        pages[name] = "\n".join(lines)
    for page, text in pages.items():
        target = REFERENCE / f"{page}.md"
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


_REFERENCE_INDEX = """# API reference

Every public name of every package, generated from its docstring.

```{toctree}
:maxdepth: 1

log
otel
health
debug
mock
interceptors
```
"""


def setup(app: Sphinx) -> None:
    app.connect("config-inited", _write_guides)
    app.connect("config-inited", _write_reference)
