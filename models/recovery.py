"""Runs left behind by killed processes: who owns a run, and ending the runs of owners that died.

A process killed with SIGKILL (or a machine that lost power) cannot end its MLflow run: the run
stays RUNNING for ever. So every run this project creates names its owner in tags: the host, the
process id, the process's start time (a reused pid has another start time) and its pid
namespace (a container sharing the host's name numbers its processes apart).
`recover_abandoned_runs`, called at the start of every pipeline run, ends a RUNNING run as
KILLED, tagged `abandoned_reason`, when its owner is provably gone:

- owned by a process on this host (same name, same pid namespace): that process no longer exists (or is a zombie), or the pid
  now belongs to a process started at another time;
- owned by another host, or with no owner tags (older runs, other tools): only once the run is
  older than `MAX_AGE` (2 days), since another host's processes cannot be checked from here.

The same rule decides whether a registered model version left undecided was abandoned
(models/registry.py) and, in the flow, whether a RUNNING Prefect flow run was (tasks/training.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from mlflow import MlflowClient
from mlflow.environment_variables import MLFLOW_RUN_CONTEXT
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)

OWNER_HOST = "owner.host"
OWNER_PID = "owner.pid"
OWNER_START = "owner.start_time"  # seconds since the epoch, as the OS reports the process start
OWNER_PID_NS = "owner.pid_namespace"  # e.g. pid:[4026531836]; empty where the OS does not say
ABANDONED_TAG = "abandoned_reason"
MAX_AGE = timedelta(days=2)
# /proc/stat's boot time is whole seconds and is recomputed from the clock, so the same process's
# start time may read a second apart; a different process reusing the pid within 2 s is moot.
START_TOLERANCE_S = 2.0


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None if no such pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch); None where /proc cannot say."""
    boot = _boot_time()
    fields = _proc_stat(pid) if boot is not None else None
    if not fields:
        return None
    return round(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)  # field 22: starttime


def pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_exists(pid: int) -> bool:
    if Path("/proc/self/stat").exists():  # Linux: a zombie has exited, only its entry is left
        fields = _proc_stat(pid)
        return fields is not None and fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@dataclass(frozen=True)
class ProcessOwner:
    """The process that owns a run (or a model version being registered, or a flow run)."""

    host: str
    pid: int
    start_time: float | None  # None where the OS does not say (no /proc): then the pid alone
    pid_ns: str | None = None

    @classmethod
    def current(cls) -> ProcessOwner:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start_time(pid), pid_namespace())

    @classmethod
    def from_tags(cls, tags: Mapping[str, object]) -> ProcessOwner | None:
        """The owner named by tags (or Prefect labels); None if they name none."""
        try:
            host, pid = str(tags[OWNER_HOST]), int(str(tags[OWNER_PID]))
            start = tags.get(OWNER_START)
            start_time = float(str(start)) if start not in (None, "") else None
        except (KeyError, ValueError):
            return None
        return cls(host, pid, start_time, str(tags.get(OWNER_PID_NS) or "") or None)

    def as_tags(self) -> dict[str, str]:
        start = "" if self.start_time is None else f"{self.start_time:.2f}"
        return {
            OWNER_HOST: self.host,
            OWNER_PID: str(self.pid),
            OWNER_START: start,
            OWNER_PID_NS: self.pid_ns or "",
        }

    def is_local(self) -> bool:
        """Its process can be looked up from here: same host name, same pid namespace."""
        if self.host != socket.gethostname():
            return False
        return self.pid_ns is None or self.pid_ns == pid_namespace()

    def is_gone(self) -> bool:
        """On this host: the process has exited, or its pid now names another process."""
        if not self.is_local():
            raise ValueError(f"cannot check a process of another host ({self.host})")
        if not _process_exists(self.pid):
            return True
        if self.start_time is None:
            return False
        now = process_start_time(self.pid)
        return now is not None and abs(now - self.start_time) > START_TOLERANCE_S

    def describe(self) -> str:
        started = "" if self.start_time is None else f", started {_iso(self.start_time)}"
        namespace = "" if self.pid_ns in (None, pid_namespace()) else f" ({self.pid_ns})"
        return f"process {self.pid} on {self.host}{namespace}{started}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def abandoned_reason(
    owner: ProcessOwner | None,
    started_ms: int | float | None,
    *,
    max_age: timedelta = MAX_AGE,
    now: float | None = None,
) -> str | None:
    """Why something still RUNNING (started at `started_ms`, owned by `owner`) is abandoned, or
    None if it may still be alive."""
    if owner is not None and owner.is_local():
        return f"its owner, {owner.describe()}, is gone" if owner.is_gone() else None
    if started_ms is None:
        return None
    age_s = (now if now is not None else time.time()) - started_ms / 1000
    if age_s <= max_age.total_seconds():
        return None
    who = owner.describe() if owner is not None else "not recorded"
    return (
        f"still RUNNING {age_s / 3600:.0f} h after it started (limit {max_age}) and its owner "
        f"({who}) cannot be checked from {socket.gethostname()}"
    )


def own_new_runs() -> None:
    """Tag every MLflow run this process creates from now on with this process as its owner.

    Through MLflow's `MLFLOW_RUN_CONTEXT` (tags applied to each new run), so runs created by
    other modules (the comparison run) carry them too; explicit tags still win, so a training
    subprocess that inherits the variable names itself (models/train.py).
    """
    current = json.loads(MLFLOW_RUN_CONTEXT.get() or "{}")
    os.environ[MLFLOW_RUN_CONTEXT.name] = json.dumps(
        {**current, **ProcessOwner.current().as_tags()}
    )


def claim_run(run_id: str, client: MlflowClient | None = None) -> None:
    """Make this process the run's owner (a run trained in a subprocess, now used by the flow)."""
    client = client or MlflowClient()
    for key, value in ProcessOwner.current().as_tags().items():
        client.set_tag(run_id, key, value)


def recover_abandoned_runs(
    experiment_id: str,
    client: MlflowClient | None = None,
    *,
    status: str = "KILLED",
    max_age: timedelta = MAX_AGE,
) -> list[str]:
    """End every RUNNING run of the experiment whose owner is gone as `status`; their ids.

    The reason is tagged first, then the run ended, so an interruption here leaves nothing that
    the next call would not redo.
    """
    client = client or MlflowClient()
    me = ProcessOwner.current()
    runs = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    ended: list[str] = []
    for run in runs:
        reason = abandoned_reason(
            ProcessOwner.from_tags(run.data.tags), run.info.start_time, max_age=max_age
        )
        if reason is None:
            continue
        note = f"{reason}; ended {status} by {me.describe()} at {_iso(time.time())}"
        try:
            client.set_tag(run.info.run_id, ABANDONED_TAG, note)
            client.set_terminated(run.info.run_id, status=status)
        except MlflowException as error:  # deleted meanwhile, say: not worth failing a run for
            log.warning("could not end abandoned run %s: %s", run.info.run_id, error)
            continue
        log.warning("run %s (%s) ended %s: %s", run.info.run_id, run.info.run_name, status, reason)
        ended.append(run.info.run_id)
    return ended
