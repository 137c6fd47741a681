"""Generated files for a broad interface match the golden files, byte for byte, every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clue.mock import generate

FORMS = {"default": False, "pytest": True}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_generated_files_match_golden(
    shop: Path, form: str, golden: Path, update_golden: bool
) -> None:
    """Every generated file equals its golden file (set CMG_UPDATE_GOLDEN=1 to update)."""
    files = generate([shop / "shop"], pytest=FORMS[form])
    names = sorted(p.relative_to(shop).as_posix() for p in files)
    assert names == ["shop/mocks/__init__.py", "shop/mocks/base.py", "shop/mocks/services.py"]
    for path, content in files.items():
        assert path.read_text(encoding="utf-8") == content
        expected = golden / "expected" / form / f"{path.name}.txt"
        if update_golden:
            expected.parent.mkdir(parents=True, exist_ok=True)
            expected.write_text(content, encoding="utf-8")
        assert content == expected.read_text(encoding="utf-8"), f"{path.name} != {expected}"


def test_running_twice_gives_identical_bytes(shop: Path, cmg_script: Path) -> None:
    """Two runs of the installed ``cmg`` (separate processes, so separate hash seeds) agree."""
    outputs = []
    for run in range(2):
        proc = subprocess.run(
            [str(cmg_script), "gen", "shop"], cwd=shop, capture_output=True, text=True,
            timeout=60, check=False, env={"PYTHONHASHSEED": str(run), "PATH": ""},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outputs.append(
            {p.name: p.read_bytes() for p in sorted((shop / "shop" / "mocks").glob("*.py"))}
        )
        mtimes = {p.name: p.stat().st_mtime_ns for p in (shop / "shop" / "mocks").glob("*.py")}
        verb = "wrote" if run == 0 else "unchanged"
        assert proc.stdout.splitlines() == [
            f"{verb} shop/mocks/__init__.py",
            f"{verb} shop/mocks/base.py",
            f"{verb} shop/mocks/services.py",
        ]
    assert outputs[0] == outputs[1]
    # The second run left the files alone, so build tools see no change.
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in (shop / "shop" / "mocks").glob("*.py")}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_generated_code_is_already_formatted(shop: Path, form: str) -> None:
    """ruff (default line length) finds nothing to reformat, and no lint or import-order issue."""
    generate([shop / "shop"], pytest=FORMS[form])
    mocks = str(shop / "shop" / "mocks")
    ruff = [sys.executable, "-m", "ruff", "--quiet"]
    fmt = subprocess.run(
        [*ruff, "format", "--isolated", "--check", "--diff", mocks],
        cwd=shop, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run(
        [*ruff, "check", "--isolated", "--select", "E,W,F,I,B,C4,SIM,RUF", mocks],
        cwd=shop, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
