"""Children die with the pipeline: when `python -m flows.pipeline` dies, however it dies, so does
everything it started.

A process killed with SIGKILL cannot take its children with it: they are re-parented and keep
running (after `kill -9` of the flow, Prefect's temporary server kept its port open and loky
workers idled on). Two mechanisms, for Linux (elsewhere both do nothing):

- `start_lifeline()` puts a unique token in this process's environment, which every process
  started from then on inherits (Prefect's temporary server, joblib/loky workers, the training
  subprocess and its DDP ranks all copy the environment), and starts a watchdog: this file run
  as a script, standard library only, in its own session (so Ctrl-C does not stop it first). It
  polls its parent; once the parent has died it sends SIGTERM to every process still carrying
  the token, then SIGKILL, `GRACE_S` later, to any left. Processes are found by the token, not
  by parentage, because orphans are re-parented and the tree is lost with its root.
- `die_with_parent()` (prctl PR_SET_PDEATHSIG) asks the kernel to signal the calling process
  the moment its parent dies; the training subprocess the flow starts calls it (and so do its
  DDP ranks, which re-run the same command).

What escapes: a descendant started with a scrubbed environment (none in this project), and a
process that rewrites its own environment block. On a normal exit the watchdog finds nothing
left (or the stragglers) and exits too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid

ENV = "IMDB_SENTIMENT_LIFELINE"
POLL_S = 0.2
GRACE_S = 3.0
_PR_SET_PDEATHSIG = 1

_watchdog: subprocess.Popen[bytes] | None = None  # kept referenced for the process's lifetime


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send `sig` to this process when its parent exits; False if unsupported.

    The signal follows the parent *thread* that started this process: start it from a thread
    that waits for it (as `subprocess.run` does).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:  # the parent died before the request was made
        os.kill(os.getpid(), sig)
    return True


def start_lifeline() -> bool:
    """Start this process's watchdog (once; later calls do nothing). False where unsupported."""
    global _watchdog
    if not os.path.isdir("/proc/self"):
        return False
    if os.environ.get(ENV, "").startswith(f"{os.getpid()}-"):
        return True
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    env = {key: value for key, value in os.environ.items() if key != ENV}
    _watchdog = subprocess.Popen(
        # -I -S: no site-packages, no PYTHON* variables: the watchdog needs only the stdlib.
        [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), token],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.environ[ENV] = token
    return True


def carriers(token: str) -> list[int]:
    """Processes (other than this one) whose environment carries `token`."""
    entry = f"{ENV}={token}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as file:
                environ = file.read()
        except OSError:  # gone meanwhile, or another user's
            continue
        if entry in environ.split(b"\0"):
            found.append(int(name))
    return found


def sweep(token: str, grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM every carrier of `token`, SIGKILL the ones still there after `grace_s`."""
    stopped: list[int] = []
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0), (signal.SIGKILL, 2.0)):
        pids = carriers(token)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        stopped += [pid for pid in pids if pid not in stopped]
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and set(carriers(token)) & set(pids):
            time.sleep(0.1)
    return stopped


def watch(parent: int, token: str) -> None:
    """Wait for `parent` to die (this process is then re-parented), then sweep its token."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while os.getppid() == parent:
        time.sleep(POLL_S)
    stopped = sweep(token)
    if stopped:
        print(
            f"lifeline: process {parent} is gone; stopped what it left running: {stopped}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
