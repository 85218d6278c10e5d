"""Finding (and stopping) every process a test started, parents dead or alive: each test process
gets a unique environment marker, which all its descendants inherit, so orphans are found too."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

MARKER = "IMDB_SENTIMENT_TEST_MARKER"


def new_marker() -> str:
    return uuid.uuid4().hex


def marked(marker: str) -> dict[int, str]:
    """{pid: command line} of the live processes whose environment carries `marker`."""
    entry = f"{MARKER}={marker}".encode()
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if entry not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited meanwhile, or another user's
            continue
        found[int(proc.name)] = command.strip()
    return found


def wait_until_none_marked(marker: str, timeout: float) -> dict[int, str]:
    """Wait up to `timeout` s for every marked process to exit; those still there."""
    deadline = time.monotonic() + timeout
    while (left := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_marked(marker: str) -> None:
    """SIGKILL whatever carries `marker` (a test's cleanup: nothing may outlive it)."""
    for pid in marked(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    wait_until_none_marked(marker, 10)
