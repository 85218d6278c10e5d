"""Killed processes leave no lies behind: a RUNNING run of a dead process is ended KILLED, and a
version registered by a process killed before its promotion decision is marked interrupted."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from config import PROJECT_ROOT
from data.prepare import PreparedData
from models.recovery import (
    ABANDONED_TAG,
    ProcessOwner,
    abandoned_reason,
    process_start_time,
    recover_abandoned_runs,
)
from models.registry import (
    CHAMPION,
    DECISION_TAG,
    INTERRUPTED,
    PENDING,
    PROMOTED,
    current_champion,
    recover_interrupted_versions,
    register_and_promote,
    registered_name,
)
from tests.model.conftest import TINY_OVERRIDES, TINY_SEED
from tests.processes import MARKER, kill_marked, new_marker

DAY_MS = 24 * 3600 * 1000


def dead_owner() -> ProcessOwner:
    """A process of this host that has exited."""
    process = subprocess.Popen(["true"])
    owner = ProcessOwner.current()
    process.wait()
    return replace(owner, pid=process.pid)


def spawn(command: list[str], marker: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, MARKER: marker, "PYTHONPATH": str(PROJECT_ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def running_runs(db: Path) -> list[str]:
    """RUNNING run ids, read straight from the SQLite file (the writer may be migrating it)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            rows = connection.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")
            return [row[0] for row in rows]
    except sqlite3.Error:  # no table yet, or locked
        return []


def test_owner_identity_and_liveness() -> None:
    me = ProcessOwner.current()
    assert ProcessOwner.from_tags(me.as_tags()) == me and not me.is_gone()
    if sys.platform.startswith("linux"):
        assert (
            me.start_time is not None and abs(process_start_time(os.getpid()) - me.start_time) < 1
        )
        reused = replace(me, start_time=me.start_time - 3600)  # same pid, earlier process
        assert reused.is_gone()
    assert dead_owner().is_gone()
    assert ProcessOwner.from_tags({}) is None
    other = ProcessOwner("some-other-host", 1, None)
    now = time.time()
    assert abandoned_reason(other, now * 1000 - 3600_000, now=now) is None
    old = abandoned_reason(other, now * 1000 - 3 * DAY_MS, now=now)
    assert old is not None and "some-other-host" in old


def test_sigkilled_training_leaves_a_running_run_that_recovery_ends_killed(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    uri = f"sqlite:///{db}"
    command = [sys.executable, "-m", "models.train", "--arch", "dense", "--dataset", "synthetic"]
    for key, value in {**TINY_OVERRIDES, "epochs": 50}.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    command += ["--seed", str(TINY_SEED), "--accelerator", "cpu", "--devices", "1", "--no-register"]
    marker = new_marker()
    process = spawn(
        command,
        marker,
        tmp_path,
        MLFLOW_TRACKING_URI=uri,
        IMDB_SENTIMENT_ARTIFACT_ROOT=str(tmp_path / "artifacts"),
        IMDB_SENTIMENT_OUTPUT_DIR=str(tmp_path / "outputs"),
    )
    try:
        deadline = time.monotonic() + 240
        while not running_runs(db) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running_runs(db), f"no run started:\n{(process.communicate()[0] or '')[-3000:]}"
        process.send_signal(signal.SIGKILL)  # mid-training: no handler, no finally, no atexit
        process.communicate()
    finally:
        kill_marked(marker)

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("imdb-sentiment").experiment_id
    (run,) = client.search_runs([experiment_id])
    assert run.info.status == "RUNNING"  # what the kill leaves: a run that looks alive
    assert run.data.tags["owner.pid"] == str(process.pid)

    assert recover_abandoned_runs(experiment_id, client) == [run.info.run_id]
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert f"process {process.pid} on" in run.data.tags[ABANDONED_TAG]
    assert recover_abandoned_runs(experiment_id, client) == []  # once is enough


def test_recovery_ends_only_runs_whose_owner_is_provably_gone(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'planted.db'}")
    experiment_id = client.create_experiment("planted")
    now_ms = int(time.time() * 1000)
    me = ProcessOwner.current()
    planted = {
        "mine": (me.as_tags(), now_ms),
        "dead": (dead_owner().as_tags(), now_ms),
        "other-host-recent": (ProcessOwner("elsewhere", 1, None).as_tags(), now_ms - 3600_000),
        "other-host-old": (ProcessOwner("elsewhere", 1, None).as_tags(), now_ms - 3 * DAY_MS),
        # Same host name, another pid namespace (a container on the host network): not checkable.
        "other-namespace": (replace(dead_owner(), pid_ns="pid:[1]").as_tags(), now_ms),
        "unowned-recent": ({}, now_ms),
        "unowned-old": ({}, now_ms - 3 * DAY_MS),
    }
    if me.start_time is not None:  # the pid of a live process, but another process's start
        reused = replace(me, start_time=me.start_time - 3600)
        planted["pid-reused"] = (reused.as_tags(), now_ms)
    ids = {
        name: client.create_run(
            experiment_id, start_time=start, tags=tags, run_name=name
        ).info.run_id
        for name, (tags, start) in planted.items()
    }
    finished = client.create_run(experiment_id, tags=dead_owner().as_tags()).info.run_id
    client.set_terminated(finished, "FINISHED")

    ended = recover_abandoned_runs(experiment_id, client, max_age=timedelta(days=2))
    expected = {"dead", "other-host-old", "unowned-old", "pid-reused"} & set(planted)
    assert sorted(ended) == sorted(ids[name] for name in expected)
    for name, run_id in ids.items():
        run = client.get_run(run_id)
        assert run.info.status == ("KILLED" if name in expected else "RUNNING"), name
        assert (ABANDONED_TAG in run.data.tags) == (name in expected), name
    assert client.get_run(finished).info.status == "FINISHED"


# --- registration --------------------------------------------------------------------------------

KILLED_REGISTRATION = textwrap.dedent(
    """
    import os, signal, sys
    from data.prepare import PreparedData
    from models import registry

    test, _ = PreparedData.load(sys.argv[1]).split("test")
    # The version is registered, then the process dies before any decision is taken.
    registry.accuracy_on = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
    registry.register_and_promote(sys.argv[2], sys.argv[3], "dense", test.head(50))
    """
)


def versions_of(client: MlflowClient, name: str) -> dict[str, ModelVersion]:
    return {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}


def test_a_registration_killed_before_its_decision_is_marked_interrupted(
    trained, tiny_prepared: Path, tmp_path: Path
) -> None:
    result = trained["dense"]
    name = registered_name("dense")
    client = MlflowClient()
    champion = current_champion(client, name)
    before = versions_of(client, name)

    marker = new_marker()
    command = [sys.executable, "-c", KILLED_REGISTRATION, str(tiny_prepared)]
    process = spawn([*command, result.run_id, result.model_uri], marker, tmp_path)
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        kill_marked(marker)
    assert process.returncode == -signal.SIGKILL, output[-3000:]

    # What the kill left: a registered version with no decision, the alias untouched.
    (version,) = set(versions_of(client, name)) - set(before)
    left = client.get_model_version(name, version)
    assert left.tags[DECISION_TAG] == PENDING and left.tags["owner.pid"] == str(process.pid)
    assert current_champion(client, name) == champion

    assert recover_interrupted_versions(name) == {version: INTERRUPTED}
    marked_version = client.get_model_version(name, version)
    assert marked_version.tags[DECISION_TAG] == INTERRUPTED
    assert "interrupted" in marked_version.tags["promotion_reason"]
    assert client.get_run(result.run_id).data.tags["promotion"] == INTERRUPTED
    assert current_champion(client, name) == champion
    assert recover_interrupted_versions(name) == {}  # settled once

    # The next registration works as ever; the interrupted version never becomes champion.
    test, _ = PreparedData.load(tiny_prepared).split("test")
    decision = register_and_promote(result.run_id, result.model_uri, "dense", test.head(50))
    assert client.get_model_version(name, decision.version).tags[DECISION_TAG] in (
        PROMOTED,
        "not_promoted",
    )
    assert current_champion(client, name) != version


def test_pending_versions_are_completed_if_champion_and_left_alone_if_their_owner_lives(
    trained,
) -> None:
    result = trained["dense"]
    name = registered_name("dense")
    client = MlflowClient()
    champion = current_champion(client, name)
    source = client.get_model_version(name, str(result.registered_version)).source

    def pending(owner: ProcessOwner) -> str:
        tags = {DECISION_TAG: PENDING, **owner.as_tags()}
        return str(client.create_model_version(name, source, result.run_id, tags=tags).version)

    # Killed after moving the alias, before writing the decision: it was promoted.
    promoted = pending(dead_owner())
    live = pending(ProcessOwner.current())  # a registration still in progress
    try:
        client.set_registered_model_alias(name, CHAMPION, promoted)
        assert recover_interrupted_versions(name) == {promoted: PROMOTED}
        assert client.get_model_version(name, promoted).tags[DECISION_TAG] == PROMOTED
        assert client.get_model_version(name, live).tags[DECISION_TAG] == PENDING
    finally:
        if champion is not None:
            client.set_registered_model_alias(name, CHAMPION, champion)
        client.delete_model_version(name, live)
