"""Module lookup agrees with the import system on any layout, namespace packages included."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue.mock._finder import find, module_name

# The import system's answer for each name, from a fresh interpreter on the same path.
_ORACLE = """\
import importlib.util, json, sys
roots, names = json.loads(sys.argv[1])
sys.path[:0] = roots
out = {}
for name in names:
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        spec = None
    if spec is None:
        out[name] = None
    else:
        origin = spec.origin if spec.has_location else None
        out[name] = [origin, sorted(spec.submodule_search_locations or [])]
print(json.dumps(out))
"""

_NAMES = st.sampled_from(["alpha", "beta", "gamma"])
# A file in one of two roots: directories (each with or without ``__init__.py``), then a
# module file or a package ``__init__.py``.
_FILES = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.lists(st.tuples(_NAMES, st.booleans()), min_size=0, max_size=3),
        _NAMES,
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_FILES)
def test_lookup_matches_the_import_system(
    files: list[tuple[int, list[tuple[str, bool]], str]],
) -> None:
    """For random trees over two roots, ``find`` gives the file ``find_spec`` gives, and
    ``module_name`` names each file the way that imports it (or not at all)."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp).resolve()
        roots = [base / "r0", base / "r1"]
        written: list[Path] = []
        for root_index, dirs, leaf in files:
            where = roots[root_index] / "top"
            where.mkdir(parents=True, exist_ok=True)
            for name, has_init in dirs:
                where = where / name
                where.mkdir(exist_ok=True)
                if has_init:
                    (where / "__init__.py").touch()
            module = where / f"{leaf}.py"  # may sit next to a directory of the same name
            module.touch()
            written.append(module)
        for root in roots:
            root.mkdir(exist_ok=True)
        names = sorted(
            {
                ".".join(p.relative_to(root).with_suffix("").parts)
                for root in roots
                for p in root.rglob("*.py")
            }
            | {
                ".".join(p.relative_to(root).parts)
                for root in roots
                for p in root.rglob("*")
                if p.is_dir()
            }
        )
        names = [n.removesuffix(".__init__") for n in names]
        proc = subprocess.run(
            [sys.executable, "-c", _ORACLE, json.dumps([[str(r) for r in roots], names])],
            capture_output=True, text=True, timeout=60, check=True, cwd=base,
        )  # fmt: skip
        expected = json.loads(proc.stdout)
        for name in names:
            found = find(name, roots)
            if found is None:
                assert expected[name] is None, name
                continue
            origin = None if found.origin is None else str(found.origin)
            locations = sorted(str(p) for p in found.locations)
            assert [origin, locations] == expected[name], name
        for path in sorted({*written, *(p for r in roots for p in r.rglob("__init__.py"))}):
            named = module_name(path, roots)
            if named is not None:
                assert expected[named[0]][0] == str(path), (path, named)
