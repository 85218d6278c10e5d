"""Downloads are retried with backoff on network faults only; a local path never is."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator

import pytest

from data import imdb
from data.imdb import DataSourceError, download_archive
from tests.data.conftest import tiny_imdb_files, write_tar

Reply = tuple[int, bytes, int | None]  # status, body, declared length (None: the body's)


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    replies: list[Reply] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        status, body, declared = self.replies.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if declared is None else declared))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # a short body ends with the connection

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, list[Reply]]]:
    replies: list[Reply] = []
    handler = type("Handler", (_ScriptedHandler,), {"replies": replies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/aclImdb_v1.tar.gz", replies
    server.shutdown()
    server.server_close()


@pytest.fixture
def payload(tmp_path) -> bytes:
    return write_tar(tmp_path / "source.tar.gz", tiny_imdb_files()).read_bytes()


def fetch(url: str, dest, payload: bytes, waits: list[float]):
    sha = hashlib.sha256(payload).hexdigest()
    return download_archive(url, dest, sha, timeout=5, sleep=waits.append)


def test_server_errors_and_short_bodies_are_retried_with_backoff(
    tmp_path, scripted_server, payload
) -> None:
    url, replies = scripted_server
    replies += [(503, b"busy", None), (200, payload[:100], len(payload)), (200, payload, None)]
    waits: list[float] = []
    dest = tmp_path / "cache" / "aclImdb_v1.tar.gz"
    assert fetch(url, dest, payload, waits) == dest and dest.read_bytes() == payload
    assert waits == list(imdb.DOWNLOAD_RETRY_DELAYS[:2])
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no partial file left


def test_retries_end_with_the_clear_message(tmp_path, scripted_server, payload) -> None:
    url, replies = scripted_server
    replies += [(500, b"", None)] * 4
    waits: list[float] = []
    with pytest.raises(DataSourceError, match=r"Could not download .* \(4 attempts\)"):
        fetch(url, tmp_path / "a.tar.gz", payload, waits)
    assert waits == [10.0, 30.0, 90.0] and list(tmp_path.iterdir()) == [tmp_path / "source.tar.gz"]


@pytest.mark.parametrize("status", [404, 403])
def test_a_missing_or_forbidden_url_is_not_retried(
    tmp_path, scripted_server, payload, status
) -> None:
    url, replies = scripted_server
    replies.append((status, b"no", None))
    waits: list[float] = []
    with pytest.raises(DataSourceError, match=f"Could not download.*{status}"):
        fetch(url, tmp_path / "a.tar.gz", payload, waits)
    assert waits == []


def test_a_checksum_mismatch_on_a_whole_body_is_not_retried(
    tmp_path, scripted_server, payload
) -> None:
    url, replies = scripted_server
    replies.append((200, payload[:-1] + b"!", None))
    waits: list[float] = []
    with pytest.raises(DataSourceError, match="Checksum mismatch"):
        fetch(url, tmp_path / "a.tar.gz", payload, waits)
    assert waits == []


def test_a_malformed_url_is_not_retried(tmp_path) -> None:
    waits: list[float] = []
    with pytest.raises(DataSourceError, match="Could not download"):
        download_archive(
            "nonsense://x/a.tar.gz", tmp_path / "a.tar.gz", "0" * 64, sleep=waits.append
        )
    assert waits == []


def test_a_missing_local_path_fails_at_once_without_sleeping(
    fresh_settings, monkeypatch, tmp_path
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s for a local path")

    monkeypatch.setattr(imdb.time, "sleep", no_sleep)
    monkeypatch.setenv("IMDB_ARCHIVE", str(tmp_path / "nonexistent" / "file"))
    imdb.get_settings.cache_clear()
    with pytest.raises(DataSourceError, match="IMDB_ARCHIVE points to a missing path"):
        imdb.resolve_source(None)
    with pytest.raises(DataSourceError, match="IMDB data path not found"):
        imdb.resolve_source(tmp_path / "missing.tar.gz")
