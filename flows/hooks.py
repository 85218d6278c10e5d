"""State hooks of the `imdb-sentiment` flow: what a failed run says about its cause at the end of
its log, where the UI and `prefect flow-run logs` show it, not only deep in a traceback."""

from __future__ import annotations

from typing import Any

from prefect.logging.loggers import flow_run_logger

from config import get_settings
from models.tracking import TrackingUnavailableError, check_tracking_server


def explain_tracking_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """A run that failed while its MLflow tracking server is unreachable (stopped, crashed, cut
    off mid-run) says so in one line naming the server; any other failure is left as it is."""
    try:
        check_tracking_server(get_settings().mlflow_tracking_uri)
    except TrackingUnavailableError as error:
        flow_run_logger(flow_run, flow).error(
            "This run failed with its tracking store out of reach: %s", error
        )
