"""The release gates of ``tools/release_check.py``, fed broken inputs on purpose."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


def _release_check() -> ModuleType:
    path = ROOT / "tools" / "release_check.py"
    spec = importlib.util.spec_from_file_location("release_check", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("release_check", module)
    spec.loader.exec_module(module)
    return module


release_check = _release_check()


def _tree(root: Path, version: str) -> Path:
    pkg = root / "packages" / "clue-log"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "pyproject.toml").write_text(f'[project]\nname = "clue-log"\nversion = "{version}"\n')
    return root


def test_release_tag_whose_version_only_matches_as_a_pattern_is_refused(tmp_path: Path) -> None:
    """``1.1.0`` read as a pattern matches ``101.0``: the tag is still refused."""
    root = _tree(tmp_path, "101.0")
    problem, package = release_check.tag_problem("clue-log-v1.1.0", root)
    assert package == "clue-log"
    assert problem is not None
    assert "101.0" in problem
    assert release_check.tag_problem("clue-log-v101.0", root) == (None, "clue-log")


VERSIONS = st.from_regex(r"[0-9][0-9.+a-z()$|{}]{0,8}", fullmatch=True)


@given(declared=VERSIONS, tagged=VERSIONS)
def test_release_tag_is_released_only_at_exactly_its_version(declared: str, tagged: str) -> None:
    """A tag releases its package only when the version is the very string pyproject declares."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = _tree(Path(tmp), declared)
        problem, _ = release_check.tag_problem(f"clue-log-v{tagged}", root)
        assert (problem is None) == (declared == tagged)


@pytest.mark.parametrize(
    "tag", ["clue-nope-v1.0.0", "clue-log", "v1.0.0", "clue-log-v", "clue-../clue-log-v1.0.0"]
)
def test_release_tag_naming_no_package_is_refused(tmp_path: Path, tag: str) -> None:
    """A tag that names no package of ``packages/`` is refused, with a reason."""
    problem, _ = release_check.tag_problem(tag, _tree(tmp_path, "1.0.0"))
    assert problem


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_release_check_sees_a_rebuilt_wheel_whose_file_contents_differ(tmp_path: Path) -> None:
    """Same file names, other bytes: the sdist did not rebuild the same wheel."""
    first = _wheel(tmp_path / "a.whl", {"clue/log/_api.py": b"x = 1\n", "d.dist-info/RECORD": b"1"})
    second = _wheel(
        tmp_path / "b.whl", {"clue/log/_api.py": b"x = 2\n", "d.dist-info/RECORD": b"2"}
    )
    assert release_check.wheels_differ(first, second) == ["clue/log/_api.py"]
    assert release_check.wheels_differ(first, first) == []
