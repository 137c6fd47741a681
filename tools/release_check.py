"""Check that every distribution is ready to release (``nox -s release_check``).

For each package under ``packages/``: build an sdist and a wheel, check their metadata
renders on PyPI (``twine check --strict``), build a second wheel from the sdist and compare
its files with the first, check that the version in ``pyproject.toml`` is the newest
release in ``CHANGELOG.md``, and that neither artifact ships another package's files.
Then lint the GitHub workflows (GitHub's schema, and zizmor's audits). Prints one line per
check; exits non-zero when any check failed.

``release_check.py --tag clue-<name>-v<version>`` checks only a release tag: it names a
package of ``packages/`` whose ``pyproject.toml`` version is exactly ``<version>``; it prints
the package's name and exits 0, or says why and exits 1 (the release workflow's gate).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RELEASE = re.compile(r"^## \[(?!Unreleased\])([^\]]+)\]", re.MULTILINE)


_TAG = re.compile(r"(clue-[a-z][a-z0-9-]*?)-v([0-9][^/\s]*)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--tag"] and len(args) == 2:
        problem, package = tag_problem(args[1])
        print(problem or package, file=sys.stderr if problem else sys.stdout)
        return 1 if problem else 0
    failures: list[str] = []
    for pkg in sorted((ROOT / "packages").iterdir()):
        if (pkg / "pyproject.toml").is_file():
            failures += [f"{pkg.name}: {problem}" for problem in check(pkg)]
    failures += [f"workflows: {problem}" for problem in check_workflows()]
    for failure in failures:
        print(f"FAIL {failure}")
    print("release check:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


def check(pkg: Path) -> list[str]:
    project = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    leaf = "clue/" + name.removeprefix("clue-").replace("-", "_") + "/"
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _run("uv", "build", "--sdist", "--wheel", "--no-sources", "-q", "-o", out / "dist", pkg)
        sdist = next((out / "dist").glob("*.tar.gz"))
        wheel = next((out / "dist").glob("*.whl"))
        _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
        print(f"ok   {name}: twine check --strict {sdist.name} {wheel.name}")

        _run("uv", "build", "--wheel", "-q", "--out-dir", out / "from-sdist", sdist)
        rebuilt = next((out / "from-sdist").glob("*.whl"))
        direct = _wheel_files(wheel)
        if differ := wheels_differ(wheel, rebuilt):
            problems.append(f"the wheel built from the sdist differs: {differ}")
        else:
            print(f"ok   {name}: the sdist builds the same wheel ({len(direct)} files)")

        stray = [f for f in direct if not (f.startswith(leaf) or ".dist-info/" in f)]
        prefix = sdist.name.removesuffix(".tar.gz") + "/"
        with tarfile.open(sdist) as tar:
            members = [m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()]
        stray += [
            m
            for m in members
            if (m.startswith("src/") and not m.startswith("src/" + leaf))
            or re.match(r"(packages/|\.\./)", m)
        ]
        if stray:
            problems.append(f"ships files of another package: {stray}")
        else:
            print(f"ok   {name}: ships only {leaf} ({len(members)} files in the sdist)")

    released = _RELEASE.findall((pkg / "CHANGELOG.md").read_text())
    if not released or released[0] != version:
        problems.append(
            f"pyproject.toml says {version}, the newest release in CHANGELOG.md is "
            f"{released[0] if released else 'missing'}"
        )
    else:
        print(f"ok   {name}: version {version} is the newest release in CHANGELOG.md")
    return problems


def tag_problem(tag: str, root: Path = ROOT) -> tuple[str | None, str]:
    """Why ``tag`` must not be released (None when it may), and the package it names."""
    match = _TAG.fullmatch(tag)
    if match is None:
        return f"{tag!r} is not clue-<name>-v<version>", ""
    package, version = match.groups()
    pyproject = root / "packages" / package / "pyproject.toml"
    if not pyproject.is_file():
        return f"no package {package}", package
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    if declared != version:
        return f"packages/{package}/pyproject.toml is at version {declared}, not {version}", package
    return None, package


def check_workflows() -> list[str]:
    """The workflows against GitHub's schema (check-jsonschema) and zizmor's audits."""
    workflows = [str(w) for w in sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    problems = []
    for tool in (
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"],
        ["zizmor", "--offline", "--no-progress", "--min-severity", "medium"],
    ):
        done = subprocess.run([*tool, *workflows], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            problems.append(f"{tool[0]}: {done.stdout}{done.stderr}")
        else:
            print(f"ok   {tool[0]}: {', '.join(Path(w).name for w in workflows)}")
    return problems


def _wheel_files(wheel: Path) -> dict[str, str]:
    """Each file of the wheel and the digest of its bytes (RECORD, which lists them, aside)."""
    with zipfile.ZipFile(wheel) as zf:
        return {
            n: hashlib.sha256(zf.read(n)).hexdigest()
            for n in zf.namelist()
            if not n.endswith(".dist-info/RECORD")
        }


def wheels_differ(first: Path, second: Path) -> list[str]:
    """The files missing from one wheel or whose bytes differ between the two."""
    one, two = _wheel_files(first), _wheel_files(second)
    return sorted(n for n in one.keys() | two.keys() if one.get(n) != two.get(n))


def _run(*args: object) -> None:
    subprocess.run([str(a) for a in args], check=True)


if __name__ == "__main__":
    sys.exit(main())
