"""The IMDB Large Movie Review Dataset v1.0: find it, download it if needed, parse it into a table.

Source order: an explicit path, `IMDB_ARCHIVE`, a copy already in the data cache, else the official
archive downloaded from Stanford (SHA-256 verified, moved into the cache atomically). Reviews are
read straight from the tarball; the parsed table is cached as parquet keyed by the archive's hash.

What is trusted: the source the user names. What is checked: every member of it (name, rating on
the right side for its class, id, uniqueness, size); symbolic links inside an extracted folder are
never followed. A missing local path fails at once; only downloads are retried.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from tqdm.auto import tqdm

from config import get_settings
from data.cache import (
    atomic_write_parquet,
    discard_entry,
    file_sha256,
    load_entry,
    make_temp,
    sweep_stale_temps,
    tree_sha256,
)

log = logging.getLogger(__name__)

# `movie`: the IMDB title id the review is about (from urls_{pos,neg}.txt), None where unknown.
COLUMNS = ["review_id", "split", "text", "label", "rating", "movie"]
SPLITS = ("train", "test")
CLASSES = ("neg", "pos")
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
EXPECTED_PER_CLASS = 12_500  # per split, in the official dataset
# IMDB's own rule: a review rated 1-4 is negative, 7-10 positive (5 and 6 are left out).
RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}
# The longest real review is about 14 KB; a member past this is not a review (and is never read
# whole: at most this plus one byte). A urls file lists 12,500 pages, about 0.6 MB.
MAX_REVIEW_BYTES = 1 << 20
MAX_URLS_BYTES = 16 << 20
MAX_ID_DIGITS = 9  # real ids run 0-12,499; 20 digits would overflow int64
# Waits between download attempts: a network fault may pass, a missing local file will not.
DOWNLOAD_RETRY_DELAYS: tuple[float, ...] = (10.0, 30.0, 90.0)
# Parsing rules change the cached table: bump this to invalidate old parquet files.
_PARSER_VERSION = "3"  # 3: members validated (ratings, ids, duplicates, size), links skipped
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
# Line i of urls_<class>.txt is the IMDB page of the movie that review i of that class is about.
_URLS = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg)\.txt$")
_TITLE = re.compile(r"tt\d+")
_CHUNK = 1 << 20


class DataSourceError(RuntimeError):
    """The data could not be found, downloaded or read; the message says what to do."""


class ArchiveContentError(DataSourceError, ValueError):
    """A member of the archive or folder is not a valid IMDB review; the message names it."""


class _TransientDownloadError(Exception):
    """A network fault that another attempt may not meet."""


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
        # Only a verified download is ever renamed here; a later truncation is caught now.
        if file_sha256(cached) == settings.imdb_sha256:
            return cached
        discard_entry(cached, "its SHA-256 does not match IMDB_SHA256")
    return download_archive(settings.imdb_url, cached, settings.imdb_sha256)


def source_sha256(source: Path) -> str:
    """Content hash of a source: the archive file, or the regular files of its aclImdb/ folder."""
    source = Path(source)
    if not source.is_dir():
        return file_sha256(source)
    root = _dataset_root(source)
    return tree_sha256(root if root.is_dir() else source)


def download_archive(
    url: str,
    dest: Path,
    sha256: str,
    timeout: float = 60.0,
    *,
    retry_delays: Sequence[float] = DOWNLOAD_RETRY_DELAYS,
    sleep: Callable[[float], None] | None = None,
) -> Path:
    """Download `url` to `dest` with a progress bar; verify SHA-256; rename into place atomically.

    Network faults (refused or dropped connections, timeouts, 5xx, 408/429, a short body) are
    retried after each of `retry_delays`; anything else (404, a bad URL, a full disk, a checksum
    mismatch on a complete body) fails at once. Nothing half-written is ever left at `dest`.
    `sleep` (default `time.sleep`) is there for tests.
    """
    sleep = sleep or time.sleep
    attempts = len(retry_delays) + 1
    for attempt in range(1, attempts + 1):
        try:
            return _download_once(url, Path(dest), sha256, timeout)
        except _TransientDownloadError as error:
            if attempt == attempts:
                raise DataSourceError(
                    f"Could not download the IMDB archive from {url} ({attempts} attempts): {error}"
                ) from error
            delay = retry_delays[attempt - 1]
            log.warning("Download of %s failed (%s); retrying in %g s", url, error, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _transient(error: Exception) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    if isinstance(error, urllib.error.URLError):
        return isinstance(error.reason, OSError)  # socket-level; not "unknown url type"
    return True  # HTTPException, ConnectionError, TimeoutError


def _download_once(url: str, dest: Path, sha256: str, timeout: float) -> Path:
    tmp = make_temp(dest.parent, dest.name, suffix=".part")
    try:
        received, total = 0, None
        try:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=f"Downloading {dest.name}"
                ) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            TimeoutError,
        ) as error:
            if _transient(error):
                raise _TransientDownloadError(str(error)) from error
            raise DataSourceError(
                f"Could not download the IMDB archive from {url}: {error}"
            ) from error
        except (OSError, ValueError) as error:  # writing failed, or the URL is malformed
            raise DataSourceError(
                f"Could not download the IMDB archive from {url}: {error}"
            ) from error
        if total is not None and received < total:
            raise _TransientDownloadError(
                f"the connection closed after {received} of {total} bytes"
            )
        actual = file_sha256(tmp)
        if actual != sha256:
            raise DataSourceError(
                f"Checksum mismatch for {url}: expected SHA-256 {sha256}, got {actual}. "
                "The partial download was removed; nothing was cached."
            )
        os.replace(tmp, dest)
        log.info("Downloaded %s to %s", url, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _parse_member_name(name: str) -> tuple[str, str, int, int] | None:
    """(split, class, id, rating) of a review member, None for other files; refuses bad values."""
    match = _MEMBER.search(name)
    if match is None:
        return None
    split, cls, idx, rating = match.groups()
    if len(idx) > MAX_ID_DIGITS:
        raise ArchiveContentError(
            f"IMDB member {name}: review id has {len(idx)} digits (at most {MAX_ID_DIGITS})"
        )
    allowed = RATINGS[cls]
    if len(rating) > 2 or not 1 <= int(rating) <= 10:
        raise ArchiveContentError(f"IMDB member {name}: rating {rating} is outside 1-10")
    if int(rating) not in allowed:
        raise ArchiveContentError(
            f"IMDB member {name}: rating {int(rating)} is on the wrong side for a '{cls}' review "
            f"(IMDB rates pos 7-10, neg 1-4)"
        )
    return split, cls, int(idx), int(rating)


def _size_cap(name: str) -> int:
    return MAX_URLS_BYTES if _URLS.search(name) else MAX_REVIEW_BYTES


def _too_big(name: str, size: int | str) -> ArchiveContentError:
    return ArchiveContentError(
        f"IMDB member {name} is {size} bytes, over the limit of {_size_cap(name)} "
        "(real reviews are at most ~14 KB): this is not IMDB data, or it is damaged"
    )


def _read_capped(handle: BinaryIO, name: str, size: int) -> bytes:
    """The member's bytes, `size` as its header or stat says, reading at most the cap plus one
    byte (never a huge member whole, even if `size` lies or the file grew since)."""
    cap = _size_cap(name)
    if size > cap:
        raise _too_big(name, size)
    raw = handle.read(size + 1)  # not read(cap + 1): that allocates the cap for every review
    if len(raw) > size:
        raw += handle.read(cap + 1 - len(raw))
        if len(raw) > cap:
            raise _too_big(name, f"more than {cap}")
    return raw


def _decode(raw: bytes) -> tuple[str, int]:
    """UTF-8 with replacement; returns the text and how many characters could not be decoded."""
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return text, text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")


def _iter_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    # Members are read, never extracted; links and devices are not regular files and are skipped.
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                name = member.name
                if member.isfile() and (_MEMBER.search(name) or _URLS.search(name)):
                    if member.size > _size_cap(name):
                        raise _too_big(name, member.size)  # before decompressing any of it
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield name, _read_capped(handle, name, member.size)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataSourceError(
            f"The IMDB archive {path} is truncated or corrupt ({error}). "
            "Download it again or point --data-path / IMDB_ARCHIVE at a good copy."
        ) from error


def _dataset_root(path: Path) -> Path:
    return path if path.name == "aclImdb" else path / "aclImdb"


def _read_file(path: Path, name: str) -> bytes:
    try:
        # O_NOFOLLOW: a file swapped for a link after the check in _iter_dir is refused.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            return _read_capped(handle, name, os.fstat(handle.fileno()).st_size)
    except OSError as error:
        raise DataSourceError(f"Could not read {path}: {error}") from error


def _iter_dir(path: Path) -> Iterator[tuple[str, bytes]]:
    """Members of an extracted folder; symbolic links below its root are skipped, never followed
    (the root itself is the user's choice)."""
    root = _dataset_root(path)
    if not root.is_dir():
        raise DataSourceError(f"No aclImdb/ folder found at {path}.")
    links: list[Path] = []

    def regular(candidate: Path) -> bool:
        if candidate.is_symlink():
            links.append(candidate)
            return False
        return True

    for split in SPLITS:
        if not regular(root / split):
            continue
        for cls in CLASSES:
            urls = root / split / f"urls_{cls}.txt"
            if regular(urls) and urls.is_file():
                name = f"aclImdb/{split}/{urls.name}"
                yield name, _read_file(urls, name)
            folder = root / split / cls
            if not regular(folder) or not folder.is_dir():
                continue
            for file in sorted(folder.glob("*.txt")):
                name = f"aclImdb/{split}/{cls}/{file.name}"
                if _MEMBER.search(name) and regular(file) and file.is_file():
                    yield name, _read_file(file, name)
    if links:
        shown = ", ".join(str(p.relative_to(root)) for p in links[:5])
        log.warning(
            "Skipped %d symbolic link(s) under %s (%s%s): reviews are read from regular files only",
            len(links),
            root,
            shown,
            ", ..." if len(links) > 5 else "",
        )


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
    seen: dict[tuple[str, str, int], str] = {}  # (split, class, id) -> the member that had it
    for name, raw in tqdm(members, desc=f"Reading {path.name}", unit=" files", mininterval=1):
        if urls := _URLS.search(name):
            if (urls.group(1), urls.group(2)) in movies:
                raise ArchiveContentError(f"IMDB member {name} appears twice")
            movies[(urls.group(1), urls.group(2))] = _movie_ids(raw)
            continue
        split, cls, idx, rating = _parse_member_name(name)  # type: ignore[misc]
        if (first := seen.get((split, cls, idx))) is not None:
            raise ArchiveContentError(
                f"IMDB member {name} repeats review {split}/{cls}/{idx} (first read from {first})"
            )
        seen[(split, cls, idx)] = name
        text, bad = _decode(raw)
        undecodable += bad
        rows.append((f"{split}/{cls}/{idx}_{rating}", split, text, int(cls == "pos"), rating))
        keys.append((split, cls, idx))
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


def _read_table(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if list(frame.columns) != COLUMNS:
        raise ValueError(f"columns {list(frame.columns)}, expected {COLUMNS}")
    return frame


def load_imdb(
    data_path: str | Path | None = None,
    expected_per_class: int | None = EXPECTED_PER_CLASS,
    *,
    source_hash: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """The IMDB review table and the content hash of its source; parsed once, then cached.

    `source_hash`: the source's `source_sha256`, when the caller has just computed it. A cached
    table that cannot be read is removed (with a warning) and parsed again.
    """
    source = resolve_source(data_path)
    source_hash = source_hash or source_sha256(source)
    folder = get_settings().data_cache_dir
    sweep_stale_temps(folder)
    cached = folder / f"imdb-{source_hash[:16]}-v{_PARSER_VERSION}.parquet"
    frame = load_entry(cached, _read_table)
    if frame is not None:
        log.info("Using cached IMDB table %s", cached)
    else:
        frame = read_imdb(source)
        if expected_per_class is not None:
            check_counts(frame, expected_per_class)
        atomic_write_parquet(cached, frame)
    if expected_per_class is not None:
        check_counts(frame, expected_per_class)
    return frame, source_hash
