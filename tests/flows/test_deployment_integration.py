"""End to end through real servers, once on each backend: the stack `make up` starts (Prefect
server, MLflow tracking server serving artifacts, work pool, deployments, worker), on SQLite and
on PostgreSQL behind authentication (`make up STACK=postgres`, with the cluster it initialises).

On both: the `smoke` deployment run with `prefect deployment run --watch` trains, analyses,
registers and promotes; two runs at once share the caches and the registry safely; `down` leaves
no process behind. On SQLite, where the code under test is the same on either database (the
flow's promotion rule, the client's failure, Prefect's event system): a worse model leaves the
champion alone; the tracking server killed mid-run fails the run clearly and promotes nothing,
and after a restart the next run succeeds; a batch of new reviews triggers weekly-retrain through
its deployment trigger; the UI path is read in a real browser. On PostgreSQL: clients without
credentials are refused, the password is never shown or logged, and both servers keep their
state in the database. Everything started carries a marker, so nothing outlives the module.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from mlflow import MlflowClient

from analysis.behaviour.cases import CHECKS
from config import PROJECT_ROOT
from data.prepare import PreparedData
from flows.servers import BIN, free_port, prefect_cli, prefect_file_with
from flows.stack import Stack, is_running, recorded, restart_mlflow, stack_down
from flows.stack_postgres import PostgresSetupError, postgres_bin
from tests.processes import MARKER, kill_marked, marked, new_marker, wait_until_none_marked

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 1500  # a busy 2-core machine: a smoke run has taken 13 minutes there
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ARCHS = ("dense", "cnn")
# weekly-retrain as deployed, trigger and schedule included, on the smoke deployment's corpus: a
# run its trigger starts takes a minute instead of a full IMDB training.
QUICK_RETRAIN = {"weekly-retrain": {"dataset": "synthetic", "preset": "seed", "limit": 400,
                                    "epochs": {"dense": 1, "cnn": 1}}}  # fmt: skip
# The environment a user's shell might carry that would point the stack elsewhere.
FOREIGN = ("IMDB_SENTIMENT_STACK_USER", "IMDB_SENTIMENT_STACK_PASSWORD",
           "IMDB_SENTIMENT_DATABASE_URL", "IMDB_SENTIMENT_MLFLOW_DATABASE_URL",
           "IMDB_SENTIMENT_PREFECT_DATABASE_URL", "MLFLOW_TRACKING_USERNAME",
           "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING", "PREFECT_API_URL",
           "MLFLOW_TRACKING_URI", "IMDB_SENTIMENT_TRAIN_SUBSET", "IMDB_ARCHIVE")  # fmt: skip


@dataclass(frozen=True)
class Deployed:
    """One backend's stack, up, and what its tests need to talk to it."""

    stack: Stack
    backend: str

    @property
    def root(self) -> Path:
        return self.stack.root

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env()

    def cli(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
        return prefect_cli(self.env, *args, timeout=timeout)

    def client(self) -> MlflowClient:
        # The credentials (PostgreSQL) are in os.environ for the module: MLflow reads them there.
        return MlflowClient(tracking_uri=self.stack.mlflow_url)

    def prefect_api(self, path: str, body: dict | None = None) -> dict | list:
        headers = {"Content-Type": "application/json"}
        if auth := self.env.get("PREFECT_API_AUTH_STRING"):
            headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        request = urllib.request.Request(
            f"{self.stack.prefect_url}/api{path}",
            None if body is None else json.dumps(body).encode(),
            headers,
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def worker_log(self, chars: int = 6000) -> str:
        """The end of the worker's log: a failed flow run's traceback is there, not in `--watch`."""
        path = self.root / "logs" / "worker.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return f"\n--- end of {path} ---\n{text[-chars:]}"

    def run_smoke(self, params: dict | None = None, watch: bool = True):
        extra = ["--params", json.dumps(params)] if params else []
        watching = ["--watch"] if watch else []
        return self.cli("deployment", "run", "imdb-sentiment/smoke", *extra, *watching)


def postgres_installed() -> bool:
    try:
        return (postgres_bin() / "initdb").exists()
    except PostgresSetupError:
        return False


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-UMAP cache for both stacks' flow runs: the second stack's first analysis
    would otherwise spend ~25 s compiling what the first already compiled."""
    return tmp_path_factory.mktemp("numba")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployed(request: pytest.FixtureRequest, numba_cache: Path) -> Iterator[Deployed]:
    backend = request.param
    if backend == "postgres" and not postgres_installed():
        if os.environ.get("CI"):  # .ci/run installs PostgreSQL: missing there is a failure
            pytest.fail("PostgreSQL's server programs are not installed")
        pytest.skip("PostgreSQL's server programs are not installed (apt-get install postgresql)")
    # Not under pytest's own temporary folder: that is root's alone (0700), and as root the
    # cluster runs as the postgres user, which must be able to enter the stack's root.
    root = Path(tempfile.mkdtemp(prefix=f"imdb-{backend}-stack-"))
    root.chmod(0o711)
    marker = new_marker()
    stack = Stack(
        root,
        free_port(),
        free_port(),
        backend_store_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifacts_destination=root / "artifacts",
        backend=backend,
        postgres_port=free_port(),
        prefect_file=prefect_file_with(QUICK_RETRAIN, root / "prefect.yaml"),
    )
    with pytest.MonkeyPatch.context() as patch:
        for name in FOREIGN:
            patch.delenv(name, raising=False)
        patch.setenv(MARKER, marker)  # every process of the stack inherits it: none may survive
        # A stopped tracking server fails a run in seconds, not after MLflow's ~4 min of retries.
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        patch.setenv("PREFECT_LOGGING_LEVEL", "INFO")
        patch.setenv("NUMBA_CACHE_DIR", str(numba_cache))
        for name, folder in (("IMDB_SENTIMENT_CACHE_DIR", "cache"),
                             ("IMDB_SENTIMENT_OUTPUT_DIR", "outputs")):  # fmt: skip
            patch.setenv(name, str(root / folder))
        try:
            up = stack_cli(stack, "up", "--artifacts-destination", str(stack.artifacts_destination),
                           "--backend-store-uri", stack.backend_store_uri,
                           "--prefect-file", str(stack.prefect_file))  # fmt: skip
            assert up.returncode == 0 and "started" in up.stdout, up.stdout + up.stderr
            (root / "up-output.txt").write_text(up.stdout + up.stderr, encoding="utf-8")
            for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                if name in stack.env():  # PostgreSQL: this process's clients sign in too
                    patch.setenv(name, stack.env()[name])
            yield Deployed(stack, backend)
        finally:
            stack_down(stack)
            kill_marked(marker)
            shutil.rmtree(root, ignore_errors=True)


def stack_cli(stack: Stack, command: str, *extra: str) -> subprocess.CompletedProcess:
    """`python -m flows.stack COMMAND` for this stack, as `make up` / `make status` run it."""
    return subprocess.run(
        [sys.executable, "-m", "flows.stack", command, "--root", str(stack.root),
         "--backend", stack.backend, "--prefect-port", str(stack.prefect_port),
         "--mlflow-port", str(stack.mlflow_port), "--postgres-port", str(stack.postgres_port),
         *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


sqlite_only = pytest.mark.parametrize("deployed", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("deployed", ["postgres"], indirect=True)


def champions(client: MlflowClient) -> dict[str, str]:
    return {
        arch: client.get_model_version_by_alias(f"imdb-sentiment-{arch}", "champion").version
        for arch in ARCHS
    }


def version_counts(client: MlflowClient) -> dict[str, int]:
    return {
        arch: len(client.search_model_versions(f"name='imdb-sentiment-{arch}'")) for arch in ARCHS
    }


def test_smoke_deployment_trains_analyses_registers_and_promotes(
    deployed: Deployed,
) -> None:
    first = deployed.run_smoke()  # the deployment as prefect.yaml defines it
    output = first.stdout + first.stderr
    assert first.returncode == 0, output + deployed.worker_log()
    assert "Completed" in output, output

    client = deployed.client()
    experiment = client.get_experiment_by_name("imdb-sentiment")
    runs = client.search_runs([experiment.experiment_id])
    by_arch = {run.data.tags["arch"]: run for run in runs if "arch" in run.data.tags}
    assert set(by_arch) == set(ARCHS)
    for run in by_arch.values():
        assert {"test_acc", "test_loss", "test_f1", "test_roc_auc"} <= set(run.data.metrics)
        assert {f"behaviour_{c}_pass_rate" for c in CHECKS} <= set(run.data.metrics)
        analysis = {a.path for a in client.list_artifacts(run.info.run_id, "analysis")}
        assert {
            "analysis/population.png",
            "analysis/insights.md",
            "analysis/clusters.csv",
            "analysis/calibration.png",
            "analysis/label_issues.csv",
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
    # Artifacts went through the server to the configured destination.
    assert any((deployed.root / "artifacts").rglob("MLmodel"))

    # Any two runs can be compared from the command line too.
    out = deployed.root / "cli-comparison"
    cli = subprocess.run(
        [sys.executable, "-m", "analysis.compare", by_arch["dense"].info.run_id,
         by_arch["cnn"].info.run_id, "--out", str(out)],
        cwd=PROJECT_ROOT, env=deployed.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "dense vs cnn" in (out / "report.html").read_text(encoding="utf-8")

    first_champions = champions(client)
    for arch, run in by_arch.items():
        model = client.get_model_version(f"imdb-sentiment-{arch}", first_champions[arch])
        assert model.run_id == run.info.run_id and model.status == "READY"
    assert version_counts(client) == dict.fromkeys(ARCHS, 1)


@sqlite_only  # the promotion rule is the flow's, reading the registry through the same client
def test_a_weaker_model_is_registered_but_leaves_the_champion_alone(deployed: Deployed) -> None:
    client = deployed.client()
    first_champions = champions(client)  # the smoke run's
    experiment = client.get_experiment_by_name("imdb-sentiment")
    # A much weaker model (a few dozen reviews, one epoch) must not take the alias.
    worse = deployed.run_smoke({"limit": 40, "preset": "seed", "epochs": {"dense": 1, "cnn": 1}})
    assert worse.returncode == 0, worse.stdout + worse.stderr + deployed.worker_log()
    assert champions(client) == first_champions
    assert version_counts(client) == dict.fromkeys(ARCHS, 2)  # registered, just not promoted
    second_runs = client.search_runs([experiment.experiment_id], "tags.promotion = 'kept champion'")
    assert {run.data.tags["arch"] for run in second_runs} == set(ARCHS)


def test_two_runs_at_once_share_caches_and_registry_safely(deployed: Deployed) -> None:
    """Two flow runs at the same time, through the same worker, caches and tracking server."""
    client = deployed.client()
    before, first_champions = version_counts(client), champions(client)
    # A sample size no earlier run used: both runs prepare the same new data at the same time.
    params = json.dumps({"limit": 120, "preset": "seed", "epochs": {"dense": 1, "cnn": 1}})
    command = [str(BIN / "prefect"), "--no-prompt", "deployment", "run", "imdb-sentiment/smoke"]
    runs = [
        subprocess.Popen(
            [*command, "--params", params, "--watch"],
            cwd=PROJECT_ROOT,
            env=deployed.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=RUN_TIMEOUT)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and "Completed" in output, output + deployed.worker_log(20000)

    for arch in ARCHS:  # one new version per run, each complete and tied to a finished run
        versions = client.search_model_versions(f"name='imdb-sentiment-{arch}'")
        assert len(versions) == before[arch] + 2
        for version in versions:
            assert version.status == "READY"
            assert "test_acc" in client.get_run(version.run_id).data.metrics
    assert champions(client) == first_champions  # 120-review models do not beat the champion

    cache = deployed.root / "cache"
    leftovers = [p for p in cache.rglob(".*") if p.name.endswith(".tmp") or p.is_dir()]
    assert leftovers == [], leftovers  # no half-written cache entry
    prepared = [p.parent for p in cache.rglob("meta.json")]
    assert prepared, "no prepared data in the shared cache"
    for folder in prepared:  # every published entry is whole and loads
        assert PreparedData.load(folder).ids.shape[0] == len(PreparedData.load(folder).frame)


def automation_runs(deployed: Deployed, deployment: str) -> list[dict]:
    """Flow runs of `deployment` that an automation (a deployment trigger) created."""
    body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "START_TIME_DESC"}
    runs = deployed.prefect_api("/flow_runs/filter", body)
    return [r for r in runs if (r.get("created_by") or {}).get("type") == "AUTOMATION"]


@sqlite_only  # the trigger is Prefect's event system, the same on either database
def test_an_accepted_batch_triggers_the_retraining_deployment(deployed: Deployed) -> None:
    """`python -m data.intake add` emits imdb.data.batch.accepted; weekly-retrain's trigger (as in
    prefect.yaml) starts a run that trains on the new data version and reports its drift."""
    env = deployed.env
    client = deployed.client()
    champions(client)  # the smoke runs above left champions to compare the new data with
    assert automation_runs(deployed, "weekly-retrain") == []
    inbox = deployed.root / "new-reviews"
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
        runs = automation_runs(deployed, "weekly-retrain")
        if runs and runs[0]["state_type"] in TERMINAL:
            break
        time.sleep(5)
    assert len(runs) == 1, runs  # one batch, one run
    assert runs[0]["state_type"] == "COMPLETED", runs[0]["state"]

    experiment = client.get_experiment_by_name("imdb-sentiment")
    trained = client.search_runs([experiment.experiment_id], "tags.data_version LIKE '%+intake.v0'")
    assert {run.data.tags["arch"] for run in trained} == set(ARCHS)
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


@postgres_only
def test_clients_without_credentials_are_refused_and_the_password_is_never_shown(
    deployed: Deployed,
) -> None:
    stack, env = deployed.stack, deployed.env
    secret = env["MLFLOW_TRACKING_PASSWORD"]
    mlflow_api = f"{stack.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1"
    prefect_api = f"{stack.prefect_url}/api/flows/filter"
    right = env["PREFECT_API_AUTH_STRING"]
    for auth, expected in ((None, 401), (f"{env['MLFLOW_TRACKING_USERNAME']}:wrong-password", 401),
                           (right, 200)):  # fmt: skip
        assert status_of(mlflow_api, auth) == expected, auth
        assert status_of(prefect_api, auth, {}) == expected, auth

    assert set(recorded(stack)) == {"postgres", "prefect-server", "mlflow-server", "worker"}
    assert (stack.root / "postgres" / "PG_VERSION").exists()  # the cluster the stack made
    # The generated password is kept, and handed to clients, by files only their owner reads.
    for private in (stack.root / "secrets.json", stack.env_file, stack.root / "mlflow-auth.ini"):
        assert private.stat().st_mode & 0o777 == 0o600, private
    exports = stack.env_file.read_text(encoding="utf-8")
    for name in ("PREFECT_API_AUTH_STRING", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert f"export {name}=" in exports
    # ... and never shown: not by `up`, not in a log, not on any command line, not as a param or
    # tag.
    assert secret not in (stack.root / "up-output.txt").read_text(encoding="utf-8")
    for log in (stack.root / "logs").iterdir():
        assert secret not in log.read_text(encoding="utf-8", errors="replace"), log
    for pid, command in marked(os.environ[MARKER]).items():
        assert secret not in command, pid
    client = deployed.client()
    experiment = client.get_experiment_by_name("imdb-sentiment")
    for run in client.search_runs([experiment.experiment_id]):
        logged = {**run.data.params, **run.data.tags}
        assert not [key for key, value in logged.items() if secret in value], run.info.run_id

    # Both servers keep their state in the stack's PostgreSQL.
    databases = stack.postgres.databases()
    with psycopg.connect(databases.mlflow.replace("+psycopg", "")) as db:
        names = {row[0] for row in db.execute("SELECT name FROM registered_models")}
        assert {f"imdb-sentiment-{arch}" for arch in ARCHS} <= names
    with psycopg.connect(databases.prefect.replace("+asyncpg", "")) as db:
        states = [row[0] for row in db.execute("SELECT state_type FROM flow_run")]
        assert "COMPLETED" in states
    with psycopg.connect(databases.mlflow_auth.replace("+psycopg", "")) as db:
        assert [row[0] for row in db.execute("SELECT username FROM users")] == ["admin"]


def status_of(url: str, auth: str | None, body: dict | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


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


def first_flow_run(deployed: Deployed, deployment: str) -> dict:
    """The oldest flow run of `deployment` (through the Prefect REST API)."""
    body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "START_TIME_ASC", "limit": 1}
    return deployed.prefect_api("/flow_runs/filter", body)[0]


@sqlite_only
def test_the_runs_read_in_the_mlflow_and_prefect_uis(deployed: Deployed) -> None:
    """The first smoke run, as a user reads it: the MLflow UI's `dense-vs-cnn` run, its comparison
    report and a model's interactive population map from the artifacts view (both HTML rendered in
    the preview's iframe), then the flow run's summary artifact in the Prefect UI. Screenshots of
    each step go to the stack's folder (`screenshots/`)."""
    chromium = chromium_or_skip()
    from playwright.sync_api import Page, expect, sync_playwright

    shots = deployed.root / "screenshots"
    shots.mkdir(exist_ok=True)
    client = deployed.client()
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
    flow_run = first_flow_run(deployed, "smoke")
    prefect_ui = deployed.stack.prefect_url

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
            page.goto(deployed.stack.mlflow_url)
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


# --- Faults and shutdown: last, they stop servers. ----------------------------------------------


@sqlite_only  # the client's failure and `restart_mlflow` (the server start `up` uses) alike on both
def test_a_run_whose_tracking_server_dies_fails_clearly_and_promotes_nothing(
    deployed: Deployed,
) -> None:
    client = deployed.client()
    before, counts = champions(client), version_counts(client)
    params = {"archs": ["dense"], "limit": 300, "epochs": {"dense": 20}, "force": True}
    started = deployed.run_smoke(params, watch=False)
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)

    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:  # until training has started
        tasks = deployed.prefect_api("/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
        # "train-<id>", the training task (not train-label-probs-<id>)
        training = [t for t in tasks if re.fullmatch(r"train-\w+", t["name"])]
        if any(t["state_type"] == "RUNNING" for t in training):
            break
        assert deployed.prefect_api(f"/flow_runs/{run_id}")["state_type"] not in TERMINAL
        time.sleep(1)
    os.killpg(recorded(deployed.stack)["mlflow-server"]["pid"], signal.SIGKILL)

    while time.monotonic() < deadline:
        run = deployed.prefect_api(f"/flow_runs/{run_id}")
        if run["state_type"] in TERMINAL:
            break
        time.sleep(2)
    assert run["state_type"] == "FAILED", run["state"]
    # Newest first: a page holds 200 lines and the hook's line is among the last of a long run.
    logs = deployed.prefect_api(
        "/logs/filter",
        {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_DESC", "limit": 200},
    )
    said = [log["message"] for log in logs if "tracking store out of reach" in log["message"]]
    assert said, [log["message"][:300] for log in logs]
    assert f"MLflow tracking server {deployed.stack.mlflow_url} is unreachable" in said[0]

    restart_mlflow(deployed.stack)
    assert champions(client) == before and version_counts(client) == counts  # nothing promoted
    again = deployed.run_smoke({**params, "epochs": {"dense": 1}, "limit": 200})
    assert again.returncode == 0 and "Completed" in again.stdout, (
        again.stdout + again.stderr + deployed.worker_log()
    )
    assert version_counts(client)["dense"] == counts["dense"] + 1


def test_down_stops_every_process_the_stack_started(deployed: Deployed) -> None:
    stack = deployed.stack
    processes = recorded(stack)
    names = {"prefect-server", "mlflow-server", "worker"} | (
        {"postgres"} if deployed.backend == "postgres" else set()
    )
    assert set(processes) == names
    status = stack_cli(stack, "status")  # `make status`
    assert status.returncode == 0, status.stdout + status.stderr
    for name in names:
        assert re.search(rf"^{name} +up ", status.stdout, re.MULTILINE), status.stdout
    down = stack_cli(stack, "down")  # `make down`
    assert down.returncode == 0 and all(name in down.stdout for name in names), down.stdout
    for name, info in processes.items():
        assert not is_running(info["pid"], info["marker"]), name
    # Every process the stack started (PostgreSQL's own children included) is gone.
    assert wait_until_none_marked(os.environ[MARKER], 30) == {}
