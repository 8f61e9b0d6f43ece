"""Running the built `cpiscope` binary from the Python tests: where it is, the fixture trajectory, a
skip marker for when it is not built, and `cpiscope(...)` / `ok(...)` (which asserts exit status 0)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".build" / "debug" / "cpiscope"
FIXTURE = ROOT / "Tests" / "Fixtures" / "probe-trajectory"

needs_binary = pytest.mark.skipif(not BINARY.exists(), reason="build cpiscope first: swift build")


def cpiscope(*args):
    return subprocess.run([str(BINARY), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600)


def ok(*args):
    r = cpiscope(*args)
    assert r.returncode == 0, f"cpiscope {args} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout
