"""The ``cmg`` command: ``cmg gen [--pytest] [--check] TARGET...``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from clue.mock._generate import apply, plan
from clue.mock._source import GenerationError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cmg``; returns the exit status (0 success, 1 failure, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "gen":
        parser.print_help(sys.stderr)
        return 2
    # Like ``python -m``: module targets are looked up from the current directory.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        result = plan(args.targets, pytest=args.pytest)
        if not result.files and not result.stale:
            sys.stderr.write(
                "cmg: no Protocol or ABC interface with methods found in the targets\n"
            )
            return 0
        if not args.check:
            for what, path in apply(result):
                sys.stdout.write(f"{what} {_shown(path)}\n")
            return 0
    except GenerationError as exc:
        for line in str(exc).splitlines():
            sys.stderr.write(f"cmg: error: {line}\n")
        return 1
    outdated = [
        f"would write {_shown(path)}"
        for path, content in result.files.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != content
    ]
    outdated += [f"would remove {_shown(path)}" for path in result.stale]
    for line in outdated:
        sys.stdout.write(f"{line}\n")
    if outdated:
        sys.stderr.write(f"cmg: {len(outdated)} generated file(s) out of date; run cmg gen\n")
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmg", description="Generate typed mocks for typing.Protocol and abc.ABC classes."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser(
        "gen",
        help="generate mocks/<module>.py next to each source module",
        description=(
            "Generate a mocks/ package next to each source module, with one typed mock "
            "class per Protocol or ABC interface."
        ),
    )
    gen.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="a module (pkg.services), a .py file or a directory (searched recursively)",
    )
    gen.add_argument(
        "--pytest",
        action="store_true",
        help="mocks take pytest's request and fail the test at teardown when "
        "sequenced calls remain; adds a fixture per mock",
    )
    gen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a generated file is missing or out of date",
    )
    return parser


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
