"""The data cache after a crash or damage: unreadable entries are rebuilt, a killed run's
temporaries are swept, and a cache folder that cannot be written is named with the fix."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from config import get_settings
from data import prepare
from data.cache import (
    STALE_TEMP_SECONDS,
    CacheNotWritableError,
    atomic_write_text,
    sweep_stale_temps,
)
from data.imdb import load_imdb
from data.prepare import PreparedData, prepare_dataset
from data.synthetic import synthetic_reviews
from tasks.data import compute_text_metadata

PARAMS = {"vocab_size": 300, "max_len": 32, "limit": 40, "seed": 5}


@pytest.fixture(scope="module")
def small_reviews() -> pd.DataFrame:
    return synthetic_reviews(200, seed=5)


@pytest.fixture(autouse=True)
def quick_synthetic(monkeypatch, small_reviews) -> None:
    """The synthetic dataset, 200 reviews generated once (4,000 take seconds per build)."""
    monkeypatch.setattr(prepare, "synthetic_reviews", lambda *_, **__: small_reviews.copy())


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def make_old(path: Path, seconds: float = STALE_TEMP_SECONDS + 60) -> Path:
    stamp = time.time() - seconds
    for item in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(item, (stamp, stamp))
    return path


@pytest.mark.parametrize(
    "damage",
    [
        truncate,
        lambda path: path.write_bytes(b"not a parquet file"),  # ArrowInvalid: magic bytes
        lambda path: pd.DataFrame({"other": [1]}).to_parquet(path),  # readable, not our table
    ],
    ids=["truncated", "garbage", "wrong-columns"],
)
def test_an_unreadable_parsed_table_is_parsed_again(
    fresh_settings, make_archive, caplog, damage
) -> None:
    archive = make_archive()
    frame, _ = load_imdb(archive, expected_per_class=3)
    [cached] = (fresh_settings / "data").glob("imdb-*.parquet")
    damage(cached)
    with caplog.at_level(logging.WARNING):
        again, _ = load_imdb(archive, expected_per_class=3)
    pd.testing.assert_frame_equal(frame, again)
    assert str(cached) in caplog.text and "unusable" in caplog.text
    pd.testing.assert_frame_equal(pd.read_parquet(cached), frame)  # the entry was rewritten


def _rewrite_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "meta.json").read_text()) | changes
    (folder / "meta.json").write_text(json.dumps(meta))


DAMAGES: dict[str, Callable[[Path], object]] = {
    "frame-missing": lambda folder: (folder / "frame.parquet").unlink(),
    "ids-missing": lambda folder: (folder / "ids.npy").unlink(),
    "vocab-missing": lambda folder: (folder / "vocab.json").unlink(),
    "frame-truncated": lambda folder: truncate(folder / "frame.parquet"),
    "ids-truncated": lambda folder: truncate(folder / "ids.npy"),
    "meta-truncated": lambda folder: truncate(folder / "meta.json"),
    "meta-foreign": lambda folder: _rewrite_meta(folder, data_hash="0" * 16),
    "meta-only": lambda folder: [p.unlink() for p in folder.iterdir() if p.name != "meta.json"],
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_prepared_folder_is_rebuilt(fresh_settings, caplog, damage) -> None:
    folder = prepare_dataset("synthetic", **PARAMS)
    original = PreparedData.load(folder)
    original_ids = original.ids.copy()  # a memory map of a file truncated in place would SIGBUS
    damage(folder)
    with caplog.at_level(logging.WARNING):
        again = prepare_dataset("synthetic", **PARAMS)
    assert again == folder and str(folder) in caplog.text
    rebuilt = PreparedData.load(again)
    pd.testing.assert_frame_equal(rebuilt.frame, original.frame)
    assert (rebuilt.ids == original_ids).all() and rebuilt.vocab == original.vocab
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # nothing set aside stays


@pytest.mark.parametrize(
    "damage",
    [truncate, lambda path: pd.read_parquet(path).iloc[::-1].to_parquet(path)],
    ids=["truncated", "rows-of-another-split"],
)
def test_damaged_text_metadata_is_recomputed(fresh_settings, caplog, damage) -> None:
    folder = str(prepare_dataset("synthetic", **PARAMS))
    path = Path(compute_text_metadata.fn(folder))
    original = pd.read_parquet(path)
    damage(path)
    with caplog.at_level(logging.WARNING):
        assert compute_text_metadata.fn(folder) == str(path)
    assert str(path) in caplog.text
    pd.testing.assert_frame_equal(pd.read_parquet(path), original)


def test_temporaries_left_by_killed_runs_are_swept_when_the_cache_is_used(
    fresh_settings, make_archive
) -> None:
    data = fresh_settings / "data"
    prepared = data / "prepared"
    prepared.mkdir(parents=True)
    killed = prepared / ".synthetic-0123456789abcdef.k3j4h5g6"  # atomic_publish_dir's temp folder
    killed.mkdir()
    (killed / "ids.npy").write_bytes(b"\0" * 100_000)
    aside = prepared / ".synthetic-0123456789abcdef.0a1b2c3d.discard"  # an interrupted removal
    aside.mkdir()
    in_progress = prepared / ".synthetic-fedcba9876543210.zz9yy8xx"  # a concurrent run's
    in_progress.mkdir()
    (in_progress / "frame.parquet").write_bytes(b"being written")
    not_ours = prepared / ".keep"
    not_ours.write_text("a user's file")
    tmp_file = data / ".imdb-0123456789abcdef-v3.parquet.ab_cd123.tmp"  # _atomic_write's
    part = data / ".aclImdb_v1.tar.gz.q1w2e3r4.part"  # a download's
    for path in (tmp_file, part):
        path.write_bytes(b"half")
    for path in (killed, aside, not_ours, tmp_file, part):
        make_old(path)
    make_old(in_progress)
    (in_progress / "frame.parquet").write_bytes(b"still being written")  # touched just now

    prepare_dataset("synthetic", **PARAMS)
    assert not killed.exists() and not aside.exists()
    assert in_progress.exists() and not_ours.exists()
    assert tmp_file.exists() and part.exists()  # the data folder itself was not used yet
    load_imdb(make_archive(), expected_per_class=3)
    assert not tmp_file.exists() and not part.exists()


def test_sweeping_a_missing_folder_is_a_no_op(tmp_path) -> None:
    assert sweep_stale_temps(tmp_path / "absent") == []


def _assert_one_line_naming(error: pytest.ExceptionInfo, folder: Path) -> None:
    message = str(error.value)
    assert str(folder) in message and "IMDB_SENTIMENT_CACHE_DIR" in message
    assert "\n" not in message and error.value.__suppress_context__


def test_a_cache_folder_under_a_regular_file_is_named_with_the_fix(
    fresh_settings, monkeypatch, tmp_path
) -> None:
    # Tests run as root, where chmod does not stop writes: a file in the way does.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("IMDB_SENTIMENT_CACHE_DIR", str(blocker / "cache"))
    get_settings.cache_clear()
    with pytest.raises(CacheNotWritableError) as error:
        prepare_dataset("synthetic", **PARAMS)
    _assert_one_line_naming(error, blocker / "cache" / "data" / "prepared")


def test_a_read_only_cache_folder_is_named_with_the_fix(
    fresh_settings, monkeypatch, make_archive
) -> None:
    (fresh_settings / "data").mkdir(parents=True)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # what a non-root user meets

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(CacheNotWritableError, match="Permission denied") as error:
        load_imdb(make_archive(), expected_per_class=3)
    _assert_one_line_naming(error, fresh_settings / "data")


def test_a_folder_outside_the_cache_keeps_its_own_error(fresh_settings, tmp_path) -> None:
    # Model artifacts are written with the same helpers; the cache advice would mislead there.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError) as error:
        atomic_write_text(blocker / "model" / "vocab.json", "{}")
    assert not isinstance(error.value, CacheNotWritableError)
