"""Atomic file writes, content hashes and cache-entry hygiene.

Every cache entry is written to a temporary name in the same folder and renamed into place, so a
crash or a concurrent run never leaves half a file. What a crash can still leave behind (a
temporary file or folder) is swept once it is old; what a disk or a person can still damage (a
truncated or partly deleted entry) is treated as absent: removed with a warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa

from config import get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")
_CHUNK = 1 << 20
# A live writer touches its temporary entry every few seconds (a download's socket times out
# after 60 s); one untouched for this long was left by a killed run.
STALE_TEMP_SECONDS = 15 * 60
# Temporary names made here: ".<entry>.<8 random chars>" plus ".tmp", ".part" or ".discard"
# (tempfile's alphabet). Cache entries themselves never start with a dot.
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}(?:\.tmp|\.part|\.discard)?$")
# What reading a damaged entry raises: missing file, truncated parquet/npy/json, missing key.
CACHE_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,  # ArrowInvalid, JSONDecodeError, numpy's "mmap length is greater than file size"
    KeyError,
    TypeError,
    EOFError,
    pa.ArrowException,
)


class CacheNotWritableError(RuntimeError):
    """The cache folder cannot be created or written; the message names it and the fix."""


def _in_cache(folder: Path) -> bool:
    return folder.absolute().is_relative_to(get_settings().cache_dir.absolute())


def make_temp(folder: Path, name: str, suffix: str = ".tmp", *, directory: bool = False) -> Path:
    """A new temporary file (or folder) for entry `name` in `folder`, after sweeping stale ones."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(folder)
        if directory:
            return Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    except OSError as error:
        if not _in_cache(folder):  # e.g. a model artifact folder: not ours to advise on
            raise
        # One line instead of a traceback: the folder and what to do about it.
        raise CacheNotWritableError(
            f"cache folder {folder} is not writable ({error.strerror or error}): "
            "point IMDB_SENTIMENT_CACHE_DIR at a writable folder"
        ) from None
    os.close(fd)
    return Path(tmp_name)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    tmp = make_temp(path.parent, path.name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: Path, payload: bytes) -> Path:
    return _atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def atomic_write_text(path: Path, text: str) -> Path:
    return _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    return _atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def atomic_publish_dir(build: Callable[[Path], None], target: Path) -> Path:
    """Build a folder under a temporary name, then rename it to `target`.

    If another process published `target` first, ours is discarded: both hold the same content,
    since targets are named by the hash of their inputs. (A damaged `target` must be removed by
    the caller first, see `load_entry`: a rename never replaces a non-empty folder.)
    """
    target = Path(target)
    tmp = make_temp(target.parent, target.name, directory=True)
    try:
        build(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _age_seconds(path: Path, now: float) -> float:
    """Seconds since `path` (or, for a folder, anything directly in it) last changed."""
    stamps = [path.lstat().st_mtime]
    if path.is_dir() and not path.is_symlink():
        stamps += [child.lstat().st_mtime for child in path.iterdir()]
    return now - max(stamps)


def sweep_stale_temps(folder: Path, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove temporary entries a killed run left in `folder`; returns what was removed.

    Only names this module makes are touched, and only once untouched for `max_age` seconds, so
    a concurrent run's entry in progress stays. Failures (a read-only cache) are ignored here.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        candidates = [p for p in Path(folder).iterdir() if _TEMP_NAME.match(p.name)]
    except OSError:
        return removed
    for path in candidates:
        try:
            if _age_seconds(path, now) < max_age:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as error:  # gone already (another run swept it), or not ours to remove
            log.debug("Could not remove stale temporary %s: %s", path, error)
            continue
        log.warning("Removed %s, a temporary cache entry left by an interrupted run", path)
        removed.append(path)
    return removed


def discard_entry(path: Path, reason: object) -> None:
    """Remove an unusable cache entry, saying why; a folder is first renamed out of the way, so
    readers never see it half-deleted and an interrupted removal is swept later."""
    path = Path(path)
    log.warning("Cache entry %s is unusable (%s): removing it and rebuilding", path, reason)
    try:
        if path.is_dir() and not path.is_symlink():
            aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}.discard")
            os.rename(path, aside)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass  # another run removed it first
    except OSError as error:  # a read-only cache: writing the rebuilt entry will say so
        log.warning("Could not remove %s: %s", path, error)


def load_entry(path: Path, load: Callable[[Path], T]) -> T | None:
    """`load(path)`, or None when the entry is absent or unreadable (then it is discarded).

    `load` raises one of CACHE_READ_ERRORS (a ValueError for content that does not match) when
    the entry cannot be trusted.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return None
    try:
        return load(path)
    except CACHE_READ_ERRORS as error:
        discard_entry(path, f"{type(error).__name__}: {error}")
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(root: Path) -> str:
    """Hash of a folder: relative paths and contents of every regular file, in sorted order.

    Symbolic links are left out (never followed), and files are streamed, never read whole.
    """
    digest = hashlib.sha256()
    root = Path(root)
    files = [
        Path(top, name)
        for top, _dirs, names in os.walk(root)  # does not descend into linked folders
        for name in names
        # lstat: a link is not a regular file; nor is a FIFO (opening one would block).
        if stat.S_ISREG(os.lstat(os.path.join(top, name)).st_mode)
    ]
    for path in sorted(files):  # by path components, as before: hashes of old caches still hold
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    path = Path(path)
    return tree_sha256(path) if path.is_dir() else file_sha256(path)


def params_hash(*parts: object) -> str:
    """Short stable hash of simple values (used to key derived caches)."""
    return hashlib.sha256("|".join(map(repr, parts)).encode()).hexdigest()[:16]
