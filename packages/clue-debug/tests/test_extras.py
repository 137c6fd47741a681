"""Without grpcio, the gRPC names say which extra to install."""

from __future__ import annotations

import subprocess
import sys

from clue import debug
from clue.debug import _LAZY  # type: ignore[attr-defined]

_PROBE = """
import sys
sys.modules["grpc"] = None  # as if grpcio were not installed
from clue import debug
for name in sys.argv[1:]:
    try:
        getattr(debug, name)
    except ImportError as exc:
        print(f"{name}|{exc}|{exc.name}")
"""


def test_grpc_names_without_grpcio_name_the_extra() -> None:
    """Each gRPC name raises ImportError naming clue-debug[grpc], not a bare module error."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *sorted(_LAZY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert [line.split("|")[0] for line in lines] == sorted(_LAZY)
    for line in lines:
        name, message, module = line.split("|")
        assert message.startswith(
            f"clue.debug.{name} needs the 'grpc' extra: pip install 'clue-debug[grpc]' ("
        )
        assert module == "grpc"


def test_lazy_names_are_listed_and_resolve() -> None:
    """dir() lists the lazy names and, with grpcio installed, they resolve."""
    for name in _LAZY:
        assert name in dir(debug)
        assert getattr(debug, name) is not None
