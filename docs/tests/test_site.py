"""The built documentation site, looked at as a reader would.

Run by ``nox -s docs`` after ``sphinx-build``: every internal link resolves, the landing
page and an API page render in headless Chromium (screenshots are left in
``docs/_build/screenshots/`` for a person to look at), and the ```python examples of the
site's own pages run (the package guides are the packages' READMEs, whose examples each
package's ``tests/test_readme.py`` runs with the same mechanism).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

DOCS = Path(__file__).resolve().parent.parent
SITE = DOCS / "_build" / "html"
SHOTS = DOCS / "_build" / "screenshots"
PAGES = sorted(p for p in DOCS.glob("*.md"))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.add(value)
            elif (tag, name) in {
                ("a", "href"),
                ("link", "href"),
                ("img", "src"),
                ("script", "src"),
            }:
                self.links.append(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_site_was_built() -> None:
    """The site has a landing page, a guide per package and an API page per package."""
    assert (SITE / "index.html").is_file()
    for name in ("log", "otel", "health", "debug", "mock", "interceptors"):
        assert (SITE / "guides" / f"clue-{name}.html").is_file()
        assert (SITE / "reference" / f"{name}.html").is_file()


def test_every_internal_link_resolves() -> None:
    """Every relative link of every page points at a file of the site, and at an anchor it has."""
    pages = {p: _parse(p) for p in SITE.rglob("*.html")}
    broken: list[str] = []
    checked = 0
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("//", "mailto:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            checked += 1
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(SITE)}: {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(SITE)}: {link} (no such anchor)")
    assert checked > 200, checked
    assert not broken, "\n".join(broken)


def test_api_reference_documents_every_public_name() -> None:
    """Every name in the ``__all__`` of each package and of its public submodules has an
    entry in the API reference."""
    import importlib
    import pkgutil

    missing = []
    documented = 0
    for name in ("log", "otel", "health", "debug", "mock", "interceptors"):
        package = importlib.import_module(f"clue.{name}")
        html = (SITE / "reference" / f"{name}.html").read_text(encoding="utf-8")
        # The package and its public submodules (clue.log.testing, clue.health.grpc, ...).
        modules = [package] + [
            importlib.import_module(f"clue.{name}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")
        ]
        for module in modules:
            documented += len(module.__all__)
            missing += [
                f"{module.__name__}.{public}"
                for public in module.__all__
                if f'id="{module.__name__}.{public}"' not in html
            ]
    assert not missing, missing
    assert documented > 100, documented


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise AssertionError("headless Chromium is required (Debian: apt-get install chromium)")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.parametrize("page", ["index.html", "reference/log.html"])
def test_page_renders_in_chromium(page: str) -> None:
    """Headless Chromium renders the page; the screenshot is not blank."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / (page.replace("/", "_").removesuffix(".html") + ".png")
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1280,900",
                f"--screenshot={shot}", (SITE / page).as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    assert _png_size(shot) == (1280, 900)
    # A rendered page has many colours; a blank or error page has a handful.
    assert len(set(shot.read_bytes()[100:])) > 200


BLOCKS = [
    (page, i, code)
    for page in PAGES
    for i, code in enumerate(
        re.findall(r"^```python\n(.*?)^```", page.read_text(), re.DOTALL | re.MULTILINE)
    )
]


@pytest.mark.parametrize(
    ("page", "index", "code"), BLOCKS, ids=[f"{p.stem}-{i}" for p, i, _ in BLOCKS]
)
def test_page_example_runs(page: Path, index: int, code: str) -> None:
    """Each example of the site's own pages runs without error and its assertions hold."""
    exec(compile(code, f"{page}:block{index}", "exec"), {"__name__": "docs_example"})


_TEST_REF = re.compile(r"\b(clue-[a-z]+|tests-integration|docs):([\w/.-]+\.py)::(\w+)")


def test_every_promise_names_tests_that_exist() -> None:
    """Every row of the promises table names at least one test, and each named test exists."""
    root = DOCS.parent
    rows = [
        line
        for line in (DOCS / "promises.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| promise")
    ]
    assert len(rows) > 100, len(rows)
    missing: list[str] = []
    for row in rows:
        refs = _TEST_REF.findall(row)
        if not refs:
            missing.append(f"no test named: {row[:100]}")
        for package, path, name in refs:
            top = package in {"tests-integration", "docs"}
            base = root / package if top else root / "packages" / package
            source = base / path
            # A test function, a test class, or a name bound to one (Hypothesis state machines).
            defined = rf"^\s*(async )?def {name}\b|^class {name}\b|^{name} = "
            if not source.is_file():
                missing.append(f"{package}:{path} does not exist")
            elif not re.search(defined, source.read_text(encoding="utf-8"), re.MULTILINE):
                missing.append(f"{package}:{path}::{name} does not exist")
    assert not missing, "\n".join(missing)


def _declared(pyproject: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(name, lowest version, extra or None) of every requirement the package declares."""
    project = pyproject["project"]
    reqs = [(r, None) for r in project.get("dependencies", [])]
    for extra, extra_reqs in project.get("optional-dependencies", {}).items():
        reqs += [(r, extra) for r in extra_reqs]
    declared = []
    for req, extra in reqs:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+).*", req)
        assert match, f"{req!r} declares no lower bound"
        declared.append((match.group(1).lower(), match.group(2), extra))
    return declared


def _names(cell: str) -> set[str]:
    """``opentelemetry-api, -sdk (extra `x`)`` → {opentelemetry-api, opentelemetry-sdk}."""
    words = [w.strip() for w in re.sub(r"\(extra `[^`]*`\)", "", cell).split(",")]
    stem = words[0].split("-")[0]
    return {(stem + w if w.startswith("-") else w).lower() for w in words if w}


def test_supported_versions_tables_state_the_declared_bounds() -> None:
    """Each README's "Supported versions" table lists every declared requirement (with its
    extra) at its declared lowest version, and the Pythons of the classifiers."""
    import tomllib

    problems: list[str] = []
    for pkg in sorted((DOCS.parent / "packages").glob("clue-*")):
        pyproject = tomllib.loads((pkg / "pyproject.toml").read_text(encoding="utf-8"))
        readme = (pkg / "README.md").read_text(encoding="utf-8")
        section = readme.split("## Supported versions", 1)[-1].split("\n## ", 1)[0]
        rows = [
            [c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| dependency")
        ]
        pythons = ", ".join(
            c.rsplit(" :: ", 1)[1]
            for c in pyproject["project"]["classifiers"]
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
        )
        if ["Python", pythons] not in rows:
            problems.append(f"{pkg.name}: no row | Python | {pythons} |")
        for name, lowest, extra in _declared(pyproject):
            found = [
                r
                for r in rows
                if name in _names(r[0]) and (extra is None) == ("(extra `" not in r[0])
            ]
            if extra is not None:
                found = [r for r in found if f"(extra `{extra}`)" in r[0]]
            if not any(re.match(rf"{re.escape(lowest)}\b(?![.\d])", r[1]) for r in found):
                where = f" (extra `{extra}`)" if extra else ""
                problems.append(f"{pkg.name}: no row | {name}{where} | {lowest} |")
    assert not problems, "\n".join(problems)
