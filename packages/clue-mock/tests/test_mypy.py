"""Generated mocks type-check with ``mypy --strict`` against their interfaces (mypy really runs)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from clue.mock import generate


def test_mocks_and_their_use_pass_mypy_strict(
    shop: Path, golden: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """Interfaces, default-form mocks and typed uses of them pass ``mypy --strict``."""
    generate([shop / "shop"])
    shutil.copy(golden / "use_mocks.py.txt", shop / "use_mocks.py")
    status, output = run_mypy(shop, "shop", "use_mocks.py")
    assert status == 0, output
    assert "Success: no issues found in 8 source files" in output


def test_pytest_form_passes_mypy_strict(
    shop: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """The ``--pytest`` form (mocks taking ``request``, plus fixtures) passes too."""
    generate([shop / "shop"], pytest=True)
    status, output = run_mypy(shop, "shop")
    assert status == 0, output


def test_mypy_rejects_wrongly_typed_fakes(
    shop: Path, golden: Path, run_mypy: Callable[..., tuple[int, str]]
) -> None:
    """``add_*`` helpers carry the method's type: a wrong fake is a mypy error on its line."""
    generate([shop / "shop"])
    source = (golden / "misuse_mocks.py.txt").read_text(encoding="utf-8")
    (shop / "misuse_mocks.py").write_text(source, encoding="utf-8")
    expected = {n for n, line in enumerate(source.splitlines(), 1) if line.endswith("# error")}
    status, output = run_mypy(shop, "misuse_mocks.py")
    assert status == 1, output
    lines = {int(m) for m in re.findall(r"^misuse_mocks\.py:(\d+): error", output, re.MULTILINE)}
    assert lines == expected, output
