"""Without grpcio, clue.health.grpc says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("missing", ["grpc", "grpc_health"])
def test_grpc_module_without_the_extra_names_it(missing: str) -> None:
    """Importing clue.health.grpc without grpcio (or grpcio-health-checking) raises
    ImportError naming clue-health[grpc]; clue.health itself still imports."""
    probe = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "import clue.health\n"
        "try:\n"
        "    import clue.health.grpc\n"
        "except ImportError as exc:\n"
        "    print(f'{exc}|{exc.name}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    message, module = done.stdout.strip().split("|")
    assert message.startswith(
        "clue.health.grpc needs the 'grpc' extra: pip install 'clue-health[grpc]' ("
    )
    assert module.split(".")[0] == missing
