"""Shared helpers of the spar package's tests (run with pytest after installing the package:
docs/python.md)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: The repository root (crates/spar-py/python/tests -> four levels up).
ROOT = Path(__file__).resolve().parents[4]


def spar_cli() -> str | None:
    """The `spar` binary to compare against: $SPAR_BIN, else the workspace's build
    (target/debug/spar, which `cargo test --workspace` builds, or target/release/spar), else
    `spar` on PATH."""
    if os.environ.get("SPAR_BIN"):
        return os.environ["SPAR_BIN"]
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "spar"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("spar")


@pytest.fixture
def cli():
    """Runs the `spar` CLI with arguments and returns its stdout. Without a binary the test
    is skipped, unless SPAR_REQUIRE_CLI=1 (as in .ci/run), where it fails."""
    binary = spar_cli()
    if binary is None:
        if os.environ.get("SPAR_REQUIRE_CLI") == "1":
            pytest.fail("SPAR_REQUIRE_CLI=1 but no spar binary (set SPAR_BIN or build spar-cli)")
        pytest.skip("no spar binary to compare with (set SPAR_BIN or build spar-cli)")

    def run(*args: str) -> str:
        done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"spar {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    return run
