"""Atomic file writes and content hashes: every cache entry is written to a temporary file in
the same folder and renamed into place, so a crash or a concurrent run never leaves half a file."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

_CHUNK = 1 << 20


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
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
    since targets are named by the hash of their inputs.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(root: Path) -> str:
    """Hash of a folder: relative paths and contents of every file, in sorted order."""
    digest = hashlib.sha256()
    root = Path(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    path = Path(path)
    return tree_sha256(path) if path.is_dir() else file_sha256(path)


def params_hash(*parts: object) -> str:
    """Short stable hash of simple values (used to key derived caches)."""
    return hashlib.sha256("|".join(map(repr, parts)).encode()).hexdigest()[:16]
