"""Bootstrap and run the project's checks on a machine that has only ``python3``.

Usage::

    python3 tools/run.py test          # lint, typecheck, tests (3.11-3.13), packaging, integration
    python3 tools/run.py demo          # the example system under load, and its report
    python3 tools/run.py bench         # benchmarks with their ratios
    python3 tools/run.py nox -s NAME   # any nox session

It creates ``.tools/venv`` with nox and uv from PyPI, puts every CPython 3.11-3.13
found under ``$(pyenv root)/versions`` (or on PATH) first on PATH, forbids uv from
downloading interpreters, and hands over to nox.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "venv"
REQUIREMENTS = ["nox>=2025.2.9", "uv>=0.5"]
WANTED = ("3.11", "3.12", "3.13")
COMMANDS = {
    "test": [],
    "demo": ["-s", "demo"],
    "bench": ["-s", "bench"],
}


def _ensure_tools() -> Path:
    py = TOOLS / "bin" / "python"
    stamp = TOOLS / ".ok"
    if not stamp.exists():
        if TOOLS.exists():
            shutil.rmtree(TOOLS)
        venv.EnvBuilder(with_pip=True).create(TOOLS)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
            check=True,
        )
        stamp.write_text("ok\n")
    return TOOLS / "bin"


def _python_dirs() -> list[str]:
    """Directories holding python3.11/3.12/3.13, newest patch release first."""
    found: dict[str, str] = {}
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        root = subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=True
        ).stdout.strip()
    versions = Path(root) / "versions"
    if versions.is_dir():

        def key(p: Path) -> tuple[int, ...]:
            try:
                return tuple(int(x) for x in p.name.split("."))
            except ValueError:
                return (0,)

        for d in sorted(versions.iterdir(), key=key, reverse=True):
            minor = ".".join(d.name.split(".")[:2])
            if minor in WANTED and minor not in found and (d / "bin" / f"python{minor}").exists():
                found[minor] = str(d / "bin")
    for minor in WANTED:
        if minor not in found and (exe := shutil.which(f"python{minor}")):
            found[minor] = str(Path(exe).parent)
    missing = [m for m in WANTED if m not in found]
    if missing:
        print(f"warning: no interpreter found for Python {', '.join(missing)}", file=sys.stderr)
    return list(dict.fromkeys(found.values()))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "nox":
        nox_args = rest
    elif command in COMMANDS:
        nox_args = [*COMMANDS[command], *rest]
    else:
        print(
            f"unknown command {command!r}; expected one of: {', '.join([*COMMANDS, 'nox'])}",
            file=sys.stderr,
        )
        return 2
    bin_dir = _ensure_tools()
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([*_python_dirs(), str(bin_dir), env.get("PATH", "")])
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = [str(bin_dir / "nox"), "-f", str(ROOT / "noxfile.py"), *nox_args]
    return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
