"""End to end through real servers: Prefect server + process worker + MLflow tracking server.

Starts everything on 127.0.0.1 (free ports, temporary homes), deploys prefect.yaml, runs the
`smoke` deployment with `prefect deployment run --watch`, checks MLflow, then runs a worse model
and checks the champion alias stayed, then two runs at once over the same caches and registry,
then a batch of new reviews whose intake event triggers the weekly-retrain deployment. Everything started is stopped by process id.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from functools import partial

import pytest
from mlflow import MlflowClient

from analysis.behaviour.cases import CHECKS
from config import PROJECT_ROOT
from data.prepare import PreparedData
from flows.servers import (
    BIN,
    Processes,
    deploy_and_start_worker,
    free_port,
    prefect_cli,
    prefect_file_with,
    server_env,
    start_mlflow,
    start_prefect,
)

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 900
# weekly-retrain as deployed, trigger and schedule included, on the smoke deployment's corpus: a
# run its trigger starts takes a minute instead of a full IMDB training.
QUICK_RETRAIN = {"weekly-retrain": {"dataset": "synthetic", "preset": "seed", "limit": 400,
                                    "epochs": {"dense": 1, "cnn": 1}}}  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("integration")
    prefect_port, mlflow_port = free_port(), free_port()
    env = server_env(root, prefect_port, f"http://127.0.0.1:{mlflow_port}")
    env.pop("IMDB_ARCHIVE", None)
    env.pop("IMDB_SENTIMENT_TRAIN_SUBSET", None)
    procs = Processes(root, env)
    try:
        start_prefect(procs, prefect_port)
        start_mlflow(procs, mlflow_port, root)
        deploy_and_start_worker(procs, prefect_file_with(QUICK_RETRAIN, root / "prefect.yaml"))
        yield {
            "cli": partial(prefect_cli, env),
            "tracking_uri": env["MLFLOW_TRACKING_URI"],
            "root": root,
            "env": env,
        }
    finally:
        procs.stop_all()


def champion_versions(client: MlflowClient) -> dict[str, str]:
    return {
        arch: client.get_model_version_by_alias(f"imdb-sentiment-{arch}", "champion").version
        for arch in ("dense", "cnn")
    }


def test_smoke_deployment_trains_analyses_registers_and_guards_the_champion(stack) -> None:
    first = stack["cli"](
        "deployment", "run", "imdb-sentiment/smoke", "--watch", timeout=RUN_TIMEOUT
    )
    output = first.stdout + first.stderr
    assert first.returncode == 0, output
    assert "Completed" in output, output

    client = MlflowClient(tracking_uri=stack["tracking_uri"])
    experiment = client.get_experiment_by_name("imdb-sentiment")
    runs = client.search_runs([experiment.experiment_id])
    by_arch = {run.data.tags["arch"]: run for run in runs if "arch" in run.data.tags}
    assert set(by_arch) == {"dense", "cnn"}
    for run in by_arch.values():
        assert {"test_acc", "test_loss", "test_f1", "test_roc_auc"} <= set(run.data.metrics)
        assert {f"behaviour_{c}_pass_rate" for c in CHECKS} <= set(run.data.metrics)
        analysis = {a.path for a in client.list_artifacts(run.info.run_id, "analysis")}
        assert {
            "analysis/population.png",
            "analysis/insights.md",
            "analysis/clusters.csv",
        } <= analysis
    comparison = client.search_runs([experiment.experiment_id], "tags.kind = 'comparison'")
    assert len(comparison) == 1
    files = {a.path for a in client.list_artifacts(comparison[0].info.run_id, "comparison")}
    assert {"comparison/report.html", "comparison/report.md", "comparison/triage.csv"} <= files
    assert "loss_reduction_dense_top50_by_cnn" in comparison[0].data.metrics
    description = comparison[0].data.tags["mlflow.note.content"]  # the run's description
    assert f"{comparison[0].info.run_id}/artifacts/comparison/report.html" in description
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for run in by_arch.values():
        assert run.data.tags["mlflow.parentRunId"] == comparison[0].info.run_id

    # Any two runs can be compared from the command line too.
    out = stack["root"] / "cli-comparison"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.compare",
            by_arch["dense"].info.run_id,
            by_arch["cnn"].info.run_id,
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        env=stack["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "dense vs cnn" in (out / "report.html").read_text(encoding="utf-8")

    champions = champion_versions(client)
    for arch, run in by_arch.items():
        version = client.get_model_version(f"imdb-sentiment-{arch}", champions[arch])
        assert version.run_id == run.info.run_id

    # A much weaker model (a few dozen reviews, one epoch) must not take the alias.
    worse = stack["cli"](
        "deployment",
        "run",
        "imdb-sentiment/smoke",
        "--params",
        json.dumps({"limit": 40, "preset": "seed", "epochs": {"dense": 1, "cnn": 1}}),
        "--watch",
        timeout=RUN_TIMEOUT,
    )
    assert worse.returncode == 0, worse.stdout + worse.stderr
    assert champion_versions(client) == champions
    for arch in ("dense", "cnn"):
        versions = client.search_model_versions(f"name='imdb-sentiment-{arch}'")
        assert len(versions) == 2  # the new version is registered, just not promoted
    second_runs = client.search_runs([experiment.experiment_id], "tags.promotion = 'kept champion'")
    assert {run.data.tags["arch"] for run in second_runs} == {"dense", "cnn"}


def test_two_runs_at_once_share_caches_and_registry_safely(stack) -> None:
    """Two flow runs at the same time, through the same worker, caches and tracking server."""
    client = MlflowClient(tracking_uri=stack["tracking_uri"])
    names = [f"imdb-sentiment-{arch}" for arch in ("dense", "cnn")]
    before = {name: len(client.search_model_versions(f"name='{name}'")) for name in names}
    champions = champion_versions(client)
    # A sample size no earlier run used: both runs prepare the same new data at the same time.
    params = json.dumps({"limit": 120, "preset": "seed", "epochs": {"dense": 1, "cnn": 1}})
    command = [str(BIN / "prefect"), "--no-prompt", "deployment", "run", "imdb-sentiment/smoke"]
    runs = [
        subprocess.Popen(
            [*command, "--params", params, "--watch"],
            cwd=PROJECT_ROOT,
            env=stack["env"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=RUN_TIMEOUT)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and "Completed" in output, output

    for name in names:  # one new version per run, each complete and tied to a finished run
        versions = client.search_model_versions(f"name='{name}'")
        assert len(versions) == before[name] + 2
        for version in versions:
            assert version.status == "READY"
            assert "test_acc" in client.get_run(version.run_id).data.metrics
    assert champion_versions(client) == champions  # 120-review models do not beat the champion

    cache = stack["root"] / "cache"
    leftovers = [p for p in cache.rglob(".*") if p.name.endswith(".tmp") or p.is_dir()]
    assert leftovers == [], leftovers  # no half-written cache entry
    prepared = [p.parent for p in cache.rglob("meta.json")]
    assert prepared, "no prepared data in the shared cache"
    for folder in prepared:  # every published entry is whole and loads
        assert PreparedData.load(folder).ids.shape[0] == len(PreparedData.load(folder).frame)


def automation_runs(api_url: str, deployment: str) -> list[dict]:
    """Flow runs of `deployment` that an automation (a deployment trigger) created."""
    body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "START_TIME_DESC"}
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        runs = json.load(response)
    return [r for r in runs if (r.get("created_by") or {}).get("type") == "AUTOMATION"]


def test_an_accepted_batch_triggers_the_retraining_deployment(stack) -> None:
    """`python -m data.intake add` emits imdb.data.batch.accepted; weekly-retrain's trigger (as in
    prefect.yaml) starts a run that trains on the new data version and reports its drift."""
    env, api = stack["env"], stack["env"]["PREFECT_API_URL"]
    client = MlflowClient(tracking_uri=stack["tracking_uri"])
    champion_versions(client)  # the smoke runs above left champions to compare the new data with
    assert automation_runs(api, "weekly-retrain") == []
    inbox = stack["root"] / "new-reviews"
    python = [sys.executable, "-m", "data.intake"]
    made = subprocess.run(
        [*python, "simulate", "--drift", "--rows", "300", "--out", str(inbox)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    added = subprocess.run(
        [*python, "add", "--dataset", "synthetic", *map(str, inbox.glob("*.csv"))],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert added.returncode == 0 and "accepted" in added.stdout, added.stdout + added.stderr

    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        runs = automation_runs(api, "weekly-retrain")
        if runs and runs[0]["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            break
        time.sleep(5)
    assert len(runs) == 1, runs  # one batch, one run
    assert runs[0]["state_type"] == "COMPLETED", runs[0]["state"]

    experiment = client.get_experiment_by_name("imdb-sentiment")
    trained = client.search_runs([experiment.experiment_id], "tags.data_version LIKE '%+intake.v0'")
    assert {run.data.tags["arch"] for run in trained} == {"dense", "cnn"}
    for run in trained:
        contexts = {
            {t.key: t.value for t in d.tags}["mlflow.data.context"]
            for d in run.inputs.dataset_inputs
        }
        assert contexts == {"train", "validation", "test", "new_holdout"}
        assert "promotion" in run.data.tags and "promotion_eval_acc_new_data" in run.data.metrics
        drift = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
        assert {"drift/report.html", "drift/report.md"} <= drift
        assert run.data.metrics["drift_new_any"] == 1.0  # the slang-heavy batch is flagged


# --- The UI path, in a real browser: what a user opens after a run. -----------------------------

UI_TIMEOUT_MS = 120_000  # a slow machine, and the MLflow UI's bundle is large


def chromium_or_skip() -> str:
    """The chromium Playwright drives (Debian's: Playwright's own download fails here). Without it
    or the playwright package the UI test skips, except in CI (`.ci/run` sets CI), where it fails:
    there a missing browser is a broken set-up, not a reason to test less."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[dev]')")
    chromium = shutil.which("chromium")
    if chromium is None:
        missing.append("Debian's chromium (apt-get install chromium)")
    if missing:
        reason = f"the UI test needs {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; in CI it must run, not skip")
        pytest.skip(reason)
    return chromium


def first_flow_run(api_url: str, deployment: str) -> dict:
    """The oldest flow run of `deployment` (through the Prefect REST API)."""
    body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "START_TIME_ASC", "limit": 1}
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)[0]


def test_the_runs_read_in_the_mlflow_and_prefect_uis(stack) -> None:
    """The first smoke run, as a user reads it: the MLflow UI's `dense-vs-cnn` run, its comparison
    report and a model's interactive population map from the artifacts view (both HTML rendered in
    the preview's iframe), then the flow run's summary artifact in the Prefect UI. Screenshots of
    each step go to the stack's folder (`screenshots/`)."""
    chromium = chromium_or_skip()
    from playwright.sync_api import Page, expect, sync_playwright

    shots = stack["root"] / "screenshots"
    shots.mkdir(exist_ok=True)
    client = MlflowClient(tracking_uri=stack["tracking_uri"])
    experiment = client.get_experiment_by_name("imdb-sentiment")
    # The tests above added more `dense-vs-cnn` runs: the first smoke run's is the oldest.
    parent = client.search_runs(
        [experiment.experiment_id],
        "tags.kind = 'comparison'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )[0]
    parent_id = parent.info.run_id
    dense = client.search_runs(
        [experiment.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_id}' and tags.arch = 'dense'",
    )[0]
    flow_run = first_flow_run(stack["env"]["PREFECT_API_URL"], "smoke")
    prefect_ui = stack["env"]["PREFECT_API_URL"].removesuffix("/api")

    def visible(locator) -> None:
        expect(locator).to_be_visible(timeout=UI_TIMEOUT_MS)

    def shot(page: Page, name: str) -> None:
        page.wait_for_timeout(1500)  # let transitions and plots settle for a readable image
        page.screenshot(path=shots / f"{name}.png")

    def open_artifact(page: Page, folder: str, name: str):
        """Artifacts tab -> folder -> file; the preview's iframe (HTML renders sandboxed in it)."""
        page.get_by_role("tab", name="Artifacts").click()
        page.get_by_text(folder, exact=True).click()
        page.get_by_text(name, exact=True).click()
        visible(page.get_by_text(f"{folder}/{name}", exact=True))  # the preview's header
        return page.locator("iframe").first.content_frame

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox"],  # root runs the tests
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            # MLflow: home -> "Model training" (the UI opens on GenAI views) -> Experiments ->
            # imdb-sentiment -> the runs table.
            page.goto(stack["tracking_uri"])
            page.get_by_text("Model training", exact=True).click()
            page.get_by_role("link", name="Experiments").first.click()
            page.get_by_role("link", name="imdb-sentiment", exact=True).click()
            row = page.locator(f'a[href*="{parent_id}"]', has_text="dense-vs-cnn")
            visible(row)
            shot(page, "1-mlflow-runs")

            row.click()
            visible(page.get_by_role("heading", name="dense-vs-cnn"))
            # The run's description points to the report to read first.
            visible(page.get_by_role("link", name="comparison/report.html"))
            shot(page, "2-mlflow-comparison-run")

            report = open_artifact(page, "comparison", "report.html")
            visible(report.get_by_role("heading", name="dense vs cnn", exact=True))
            visible(report.get_by_role("heading", name="Headline numbers"))
            shot(page, "3-mlflow-comparison-report")

            # A nested model run, from the parent's "Child runs".
            page.get_by_role("tab", name="Overview").click()
            page.get_by_role("link", name=dense.info.run_name, exact=True).click()
            visible(page.get_by_role("heading", name=dense.info.run_name))
            population = open_artifact(page, "analysis", "population.html")
            # plotly.js (inlined) drew the map: its svg exists only once the script ran.
            visible(population.locator(".plotly-graph-div .main-svg").first)
            expect(population.locator(".gtitle")).to_contain_text(
                "latent space", timeout=UI_TIMEOUT_MS
            )
            shot(page, "4-mlflow-population")

            # Prefect: the flow run's Artifacts tab -> the summary artifact.
            page.goto(f"{prefect_ui}/runs/flow-run/{flow_run['id']}")
            visible(page.get_by_text(flow_run["name"], exact=True).first)
            page.get_by_text("Artifacts", exact=True).click()
            card = page.get_by_text("imdb-sentiment-summary", exact=True).first
            visible(card)
            visible(page.get_by_text("Test metrics and promotion").first)
            shot(page, "5-prefect-flow-run-artifacts")

            card.click()
            visible(page.get_by_role("heading", name="imdb-sentiment run"))
            # The summary links the comparison run just read in MLflow (by its short id).
            visible(page.get_by_text(parent_id[:8]).first)
            shot(page, "6-prefect-summary")
        except Exception:
            page.screenshot(path=shots / "failure.png")
            raise
        finally:
            browser.close()
