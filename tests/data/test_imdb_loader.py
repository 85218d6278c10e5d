"""The IMDB data layer on tiny archives the tests build: sources, parsing, caching, bad input."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pandas as pd
import pytest

from config import get_settings
from data import imdb
from data.imdb import (
    DataSourceError,
    check_counts,
    download_archive,
    load_imdb,
    read_imdb,
    resolve_source,
)
from tests.data.conftest import movie_id, tiny_imdb_files, write_dir, write_tar


def test_reads_the_tarball_into_the_documented_table(make_archive) -> None:
    frame = read_imdb(make_archive())
    assert list(frame.columns) == ["review_id", "split", "text", "label", "rating", "movie"]
    assert len(frame) == 12
    row = frame.set_index("review_id").loc["train/pos/1_8"]
    assert (row["split"], row["label"], row["rating"]) == ("train", 1, 8)
    assert row["movie"] == movie_id("train", 1) == "tt0000000"
    assert frame.set_index("review_id").loc["test/neg/2_3", "movie"] == "tt0001001"
    assert frame.groupby(["split", "label"]).size().tolist() == [3, 3, 3, 3]
    assert frame["rating"].between(1, 10).all()
    assert ((frame["label"] == 1) == (frame["rating"] >= 7)).all()


def test_reads_an_extracted_folder_the_same_way(tmp_path, make_archive) -> None:
    folder = write_dir(tmp_path / "extracted", tiny_imdb_files())
    from_dir, from_tar = read_imdb(folder), read_imdb(make_archive())
    pd.testing.assert_frame_equal(from_dir, from_tar)
    pd.testing.assert_frame_equal(read_imdb(folder.parent), from_tar)  # parent of aclImdb/ too


def test_movie_is_unknown_without_urls_files_or_past_their_end(make_archive) -> None:
    files = tiny_imdb_files()
    del files["aclImdb/train/urls_pos.txt"]
    files["aclImdb/test/urls_neg.txt"] = (
        b"http://www.imdb.com/title/tt0000042/usercomments\nnot a url"
    )
    frame = read_imdb(make_archive(files)).set_index("review_id")["movie"]
    assert frame[frame.index.str.startswith("train/pos/")].isna().all()
    assert frame["test/neg/0_1"] == "tt0000042"
    assert frame[["test/neg/1_2", "test/neg/2_3"]].isna().all()  # no title on line 1, no line 2
    assert frame[frame.index.str.startswith("train/neg/")].notna().all()


def test_order_is_numeric_not_lexicographic(make_archive) -> None:
    files = tiny_imdb_files(per_class=12)
    frame = read_imdb(make_archive(files))
    ids = frame.loc[(frame["split"] == "test") & (frame["label"] == 0), "review_id"]
    assert [int(r.split("/")[2].split("_")[0]) for r in ids] == list(range(12))


def test_truncated_archive_is_named_and_rejected(tmp_path, make_archive) -> None:
    good = make_archive()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataSourceError, match="truncated or corrupt") as error:
        read_imdb(truncated)
    assert str(truncated) in str(error.value)


def test_corrupt_bytes_are_rejected(tmp_path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not a gzip file at all" * 10)
    with pytest.raises(DataSourceError, match="truncated or corrupt"):
        read_imdb(junk)


def test_missing_split_or_class_folders_are_listed(make_archive) -> None:
    files = {
        k: v
        for k, v in tiny_imdb_files().items()
        if "/test/pos/" not in k and "/train/neg/" not in k
    }
    with pytest.raises(DataSourceError, match="lacks") as error:
        read_imdb(make_archive(files))
    assert "test/pos" in str(error.value) and "train/neg" in str(error.value)


def test_undecodable_bytes_are_replaced_and_counted(make_archive) -> None:
    files = tiny_imdb_files()
    files["aclImdb/train/pos/0_7.txt"] = b"Caf\xe9 scenes were \xff\xfe wonderful"
    frame = read_imdb(make_archive(files))
    text = frame.set_index("review_id").loc["train/pos/0_7", "text"]
    assert text.count("\ufffd") == 3 and "wonderful" in text
    assert frame.attrs["undecodable_chars"] == 3


def test_empty_reviews_are_kept(make_archive) -> None:
    files = tiny_imdb_files()
    files["aclImdb/test/neg/0_1.txt"] = b""
    frame = read_imdb(make_archive(files))
    assert frame.set_index("review_id").loc["test/neg/0_1", "text"] == ""
    assert len(frame) == 12


def test_check_counts_names_the_wrong_groups(make_archive) -> None:
    frame = read_imdb(make_archive())
    check_counts(frame, per_class=3)
    with pytest.raises(DataSourceError, match="expected 12500"):
        check_counts(frame)


def test_missing_path_names_it_and_the_ways_to_supply_data(fresh_settings, tmp_path) -> None:
    missing = tmp_path / "nowhere.tar.gz"
    with pytest.raises(DataSourceError) as error:
        resolve_source(missing)
    message = str(error.value)
    assert str(missing) in message and "--data-path" in message and "IMDB_ARCHIVE" in message


def test_source_order_explicit_then_env_then_cache(
    fresh_settings, monkeypatch, tmp_path, make_archive
) -> None:
    explicit = make_archive(name="explicit.tar.gz")
    env_archive = make_archive(name="env.tar.gz")
    cached = fresh_settings / "data" / imdb.ARCHIVE_NAME
    cached.parent.mkdir(parents=True)
    write_tar(cached, tiny_imdb_files())
    # Only a verified download lands in the cache: the cached copy must match IMDB_SHA256.
    monkeypatch.setenv("IMDB_SHA256", hashlib.sha256(cached.read_bytes()).hexdigest())

    monkeypatch.setenv("IMDB_ARCHIVE", str(env_archive))
    get_settings.cache_clear()
    assert resolve_source(explicit) == explicit
    assert resolve_source(None) == env_archive

    monkeypatch.delenv("IMDB_ARCHIVE")
    get_settings.cache_clear()
    assert resolve_source(None) == cached

    monkeypatch.setenv("IMDB_ARCHIVE", str(tmp_path / "gone.tar.gz"))
    get_settings.cache_clear()
    with pytest.raises(DataSourceError, match="IMDB_ARCHIVE points to a missing path"):
        resolve_source(None)


def test_parsed_table_is_cached_by_content_hash(fresh_settings, make_archive, monkeypatch) -> None:
    archive = make_archive()
    frame, digest = load_imdb(archive, expected_per_class=3)
    assert digest == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert len(list((fresh_settings / "data").glob(f"imdb-{digest[:16]}-*.parquet"))) == 1

    def fail(_path):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setattr(imdb, "read_imdb", fail)
    again, _ = load_imdb(archive, expected_per_class=3)
    pd.testing.assert_frame_equal(frame, again)


def test_nothing_is_cached_when_the_counts_are_wrong(fresh_settings, make_archive) -> None:
    with pytest.raises(DataSourceError, match="Unexpected IMDB row counts"):
        load_imdb(make_archive())  # 3 per class, not 12,500
    assert not list((fresh_settings / "data").glob("*.parquet"))


class _ArchiveHandler(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def archive_server(make_archive):
    payload = make_archive().read_bytes()
    handler = type("Handler", (_ArchiveHandler,), {"payload": payload})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/aclImdb_v1.tar.gz", payload
    server.shutdown()
    server.server_close()


def test_download_verifies_checksum_and_moves_into_place(tmp_path, archive_server) -> None:
    url, payload = archive_server
    dest = tmp_path / "cache" / "aclImdb_v1.tar.gz"
    assert download_archive(url, dest, hashlib.sha256(payload).hexdigest()) == dest
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no partial file left


def test_checksum_mismatch_removes_the_partial_download(tmp_path, archive_server) -> None:
    url, _ = archive_server
    dest = tmp_path / "cache" / "aclImdb_v1.tar.gz"
    with pytest.raises(DataSourceError, match="Checksum mismatch"):
        download_archive(url, dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_unreachable_download_is_a_clear_error(tmp_path) -> None:
    waits: list[float] = []
    with pytest.raises(DataSourceError, match="Could not download"):
        download_archive(
            "http://127.0.0.1:9/aclImdb_v1.tar.gz",
            tmp_path / "a.tar.gz",
            "0" * 64,
            timeout=5,
            sleep=waits.append,
        )
    assert waits == list(imdb.DOWNLOAD_RETRY_DELAYS)  # a refused connection is retried
    assert list(tmp_path.iterdir()) == []


def test_resolve_source_downloads_when_nothing_else_is_there(
    fresh_settings, monkeypatch, archive_server
) -> None:
    url, payload = archive_server
    monkeypatch.setenv("IMDB_URL", url)
    monkeypatch.setenv("IMDB_SHA256", hashlib.sha256(payload).hexdigest())
    get_settings.cache_clear()
    path = resolve_source(None)
    assert path == fresh_settings / "data" / imdb.ARCHIVE_NAME and path.read_bytes() == payload


def test_a_damaged_cached_archive_is_downloaded_again(
    fresh_settings, monkeypatch, archive_server, caplog
) -> None:
    url, payload = archive_server
    monkeypatch.setenv("IMDB_URL", url)
    monkeypatch.setenv("IMDB_SHA256", hashlib.sha256(payload).hexdigest())
    get_settings.cache_clear()
    cached = fresh_settings / "data" / imdb.ARCHIVE_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(payload[: len(payload) // 2])  # truncated on disk after its download
    assert resolve_source(None) == cached and cached.read_bytes() == payload
    assert "does not match IMDB_SHA256" in caplog.text
