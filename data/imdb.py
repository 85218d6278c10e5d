"""The IMDB Large Movie Review Dataset v1.0: find it, download it if needed, parse it into a table.

Source order: an explicit path, `IMDB_ARCHIVE`, a copy already in the data cache, else the official
archive downloaded from Stanford (SHA-256 verified, moved into the cache atomically). Reviews are
read straight from the tarball; the parsed table is cached as parquet keyed by the archive's hash.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from config import get_settings
from data.cache import atomic_write_parquet, content_sha256, file_sha256

log = logging.getLogger(__name__)

# `movie`: the IMDB title id the review is about (from urls_{pos,neg}.txt), None where unknown.
COLUMNS = ["review_id", "split", "text", "label", "rating", "movie"]
SPLITS = ("train", "test")
CLASSES = ("neg", "pos")
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
EXPECTED_PER_CLASS = 12_500  # per split, in the official dataset
# Parsing rules change the cached table: bump this to invalidate old parquet files.
_PARSER_VERSION = "2"
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
# Line i of urls_<class>.txt is the IMDB page of the movie that review i of that class is about.
_URLS = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg)\.txt$")
_TITLE = re.compile(r"tt\d+")


class DataSourceError(RuntimeError):
    """The data could not be found, downloaded or read; the message says what to do."""


def resolve_source(data_path: str | Path | None = None) -> Path:
    """Where to read IMDB from, following the documented order; downloads as a last resort."""
    settings = get_settings()
    how = (
        "Supply the data with --data-path PATH (an aclImdb_v1.tar.gz or an extracted aclImdb/ "
        "folder), set IMDB_ARCHIVE, or leave both unset to download the official archive."
    )
    if data_path is not None:
        path = Path(data_path).expanduser()
        if not path.exists():
            raise DataSourceError(f"IMDB data path not found: {path}. {how}")
        return path
    if settings.imdb_archive is not None:
        path = settings.imdb_archive.expanduser()
        if not path.exists():
            raise DataSourceError(f"IMDB_ARCHIVE points to a missing path: {path}. {how}")
        return path
    cached = settings.data_cache_dir / ARCHIVE_NAME
    if cached.exists():
        return cached
    return download_archive(settings.imdb_url, cached, settings.imdb_sha256)


def download_archive(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download `url` to `dest` with a progress bar; verify SHA-256; rename into place atomically.

    A failed or mismatching download is removed: nothing half-written is ever left at `dest`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"Downloading {dest.name}"
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        actual = file_sha256(tmp)
        if actual != sha256:
            raise DataSourceError(
                f"Checksum mismatch for {url}: expected SHA-256 {sha256}, got {actual}. "
                "The partial download was removed; nothing was cached."
            )
        os.replace(tmp, dest)
        log.info("Downloaded %s to %s", url, dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise DataSourceError(f"Could not download the IMDB archive from {url}: {error}") from error
    finally:
        tmp.unlink(missing_ok=True)


def _parse_member_name(name: str) -> tuple[str, str, str, int] | None:
    match = _MEMBER.search(name)
    if match is None:
        return None
    split, cls, idx, rating = match.groups()
    return split, cls, idx, int(rating)


def _decode(raw: bytes) -> tuple[str, int]:
    """UTF-8 with replacement; returns the text and how many characters could not be decoded."""
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return text, text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")


def _iter_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if member.isfile() and (_MEMBER.search(member.name) or _URLS.search(member.name)):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield member.name, handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataSourceError(
            f"The IMDB archive {path} is truncated or corrupt ({error}). "
            "Download it again or point --data-path / IMDB_ARCHIVE at a good copy."
        ) from error


def _iter_dir(path: Path) -> Iterator[tuple[str, bytes]]:
    root = path if path.name == "aclImdb" else path / "aclImdb"
    if not root.is_dir():
        raise DataSourceError(f"No aclImdb/ folder found at {path}.")
    for split in SPLITS:
        for cls in CLASSES:
            urls = root / split / f"urls_{cls}.txt"
            if urls.is_file():
                yield f"aclImdb/{split}/{urls.name}", urls.read_bytes()
            folder = root / split / cls
            for file in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
                yield f"aclImdb/{split}/{cls}/{file.name}", file.read_bytes()


def _movie_ids(raw: bytes) -> list[str | None]:
    """The title id (tt0453418) on each line of a urls file; None for a line without one."""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return [match.group(0) if (match := _TITLE.search(line)) else None for line in lines]


def _title(titles: list[str | None], index: int) -> str | None:
    return titles[index] if index < len(titles) else None


def read_imdb(path: Path) -> pd.DataFrame:
    """Parse an aclImdb archive (.tar.gz) or folder into the review table (no caching)."""
    path = Path(path)
    members = _iter_dir(path) if path.is_dir() else _iter_tar(path)
    rows, keys, undecodable = [], [], 0
    movies: dict[tuple[str, str], list[str | None]] = {}  # (split, class) -> title per review id
    for name, raw in tqdm(members, desc=f"Reading {path.name}", unit=" files", mininterval=1):
        if urls := _URLS.search(name):
            movies[(urls.group(1), urls.group(2))] = _movie_ids(raw)
            continue
        split, cls, idx, rating = _parse_member_name(name)  # type: ignore[misc]
        text, bad = _decode(raw)
        undecodable += bad
        rows.append((f"{split}/{cls}/{idx}_{rating}", split, text, int(cls == "pos"), rating))
        keys.append((split, cls, int(idx)))
    frame = pd.DataFrame(rows, columns=COLUMNS[:-1])
    # The urls files may come before or after the reviews in the archive: look titles up last.
    frame["movie"] = [_title(movies.get((split, cls), []), idx) for split, cls, idx in keys]
    missing = [
        f"{split}/{cls}"
        for split in SPLITS
        for cls in CLASSES
        if not ((frame["split"] == split) & (frame["label"] == int(cls == "pos"))).any()
    ]
    if missing:
        raise DataSourceError(
            f"The IMDB data at {path} lacks {', '.join(missing)} "
            "(expected aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt)."
        )
    if undecodable:
        log.warning("%d undecodable bytes in %s were replaced with U+FFFD", undecodable, path)
    frame.attrs["undecodable_chars"] = undecodable
    return sort_reviews(frame)


def sort_reviews(frame: pd.DataFrame) -> pd.DataFrame:
    """Deterministic order (split, class, numeric id) whatever order the archive listed files in."""
    key = frame["review_id"].str.extract(r"^(\w+)/(\w+)/(\d+)_")
    order = pd.DataFrame({"s": key[0], "c": key[1], "i": key[2].astype(int)})
    return frame.loc[order.sort_values(["s", "c", "i"]).index].reset_index(drop=True)


def check_counts(frame: pd.DataFrame, per_class: int = EXPECTED_PER_CLASS) -> None:
    """The official dataset has 12,500 reviews per class in each of train and test."""
    counts = frame.groupby(["split", "label"]).size()
    wrong = {f"{s}/{CLASSES[c]}": int(n) for (s, c), n in counts.items() if n != per_class}
    if wrong or len(counts) != 4:
        raise DataSourceError(
            f"Unexpected IMDB row counts (expected {per_class} per class per split): {wrong}"
        )


def load_imdb(
    data_path: str | Path | None = None, expected_per_class: int | None = EXPECTED_PER_CLASS
) -> tuple[pd.DataFrame, str]:
    """The IMDB review table and the content hash of its source; parsed once, then cached."""
    source = resolve_source(data_path)
    source_hash = content_sha256(source)
    cached = get_settings().data_cache_dir / f"imdb-{source_hash[:16]}-v{_PARSER_VERSION}.parquet"
    if cached.exists():
        log.info("Using cached IMDB table %s", cached)
        frame = pd.read_parquet(cached)
    else:
        frame = read_imdb(source)
        if expected_per_class is not None:
            check_counts(frame, expected_per_class)
        atomic_write_parquet(cached, frame)
    if expected_per_class is not None:
        check_counts(frame, expected_per_class)
    return frame, source_hash
