"""Children die with their parent: SIGKILL a process, and what it started goes too (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

from config import PROJECT_ROOT
from tests.processes import MARKER, kill_marked, marked, new_marker, wait_until_none_marked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")

SLEEPER = "import time; time.sleep(120)"
# A child, a child in a session of its own (as a daemon would be), and a grandchild: the shapes
# of Prefect's temporary server, loky workers and DDP ranks.
PARENT = textwrap.dedent(
    f"""
    import subprocess, sys, time
    from models.lifeline import start_lifeline
    if sys.argv[1] == "lifeline":
        start_lifeline()
    sleeper = [sys.executable, "-c", {SLEEPER!r}]
    subprocess.Popen(sleeper)
    subprocess.Popen(sleeper, start_new_session=True)
    spawner = "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(120)"
    subprocess.Popen([sys.executable, "-c", spawner, *sleeper])
    print("ready", flush=True)
    time.sleep(120)
    """
)


def start(script: str, *args: str, marker: str) -> subprocess.Popen[str]:
    env = {**os.environ, MARKER: marker, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("IMDB_SENTIMENT_LIFELINE", None)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def sleepers(marker: str) -> list[int]:
    return [pid for pid, command in marked(marker).items() if "time.sleep(120)" in command]


@pytest.mark.parametrize("mode", ["bare", "lifeline"])
def test_sigkill_of_the_parent_leaves_nothing_running_with_a_lifeline(mode: str) -> None:
    marker = new_marker()
    parent = start(PARENT, mode, marker=marker)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        # The parent (its script names the sleep too), the spawner and three sleepers.
        assert wait_for(lambda: len(sleepers(marker)) >= 5, 20), marked(marker)
        parent.kill()
        parent.wait()
        left = wait_until_none_marked(marker, 10)
        if mode == "bare":  # the fault being fixed: orphans keep running
            assert len(left) >= 4, left
        else:
            assert not left, f"still running after the parent was killed: {left}"
    finally:
        kill_marked(marker)


def test_die_with_parent_signals_the_child_when_its_parent_is_killed() -> None:
    marker = new_marker()
    child = (
        "from models.lifeline import die_with_parent; assert die_with_parent(); "
        f"print('armed', flush=True); {SLEEPER}"
    )
    parent_script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {child!r}])
        print(child.pid, flush=True)
        child.wait()
        """
    )
    parent = start(parent_script, marker=marker)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "armed"  # the child shares the parent's stdout
        assert child_pid in marked(marker)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert not wait_until_none_marked(marker, 10)
    finally:
        kill_marked(marker)


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
