"""Tiny aclImdb archives and folders built by the tests themselves (no real review text)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

Files = dict[str, bytes]


def tiny_imdb_files(per_class: int = 3) -> Files:
    files: Files = {
        "aclImdb/README": b"synthetic test archive",
        "aclImdb/imdb.vocab": b"good\nbad\n",
    }
    for split in ("train", "test"):
        for cls, word, ratings in (
            ("pos", "wonderful", (7, 8, 9, 10)),
            ("neg", "awful", (1, 2, 3, 4)),
        ):
            for i in range(per_class):
                text = f"A {word} film number {i}.<br /><br />Truly {word}!"
                files[f"aclImdb/{split}/{cls}/{i}_{ratings[i % 4]}.txt"] = text.encode()
            # Line i: the movie of review i; two reviews per movie, other movies in each split.
            urls = [
                f"http://www.imdb.com/title/{movie_id(split, i)}/usercomments"
                for i in range(per_class)
            ]
            files[f"aclImdb/{split}/urls_{cls}.txt"] = "\n".join(urls).encode()
    return files


def movie_id(split: str, review: int) -> str:
    return f"tt{(split == 'test') * 1000 + review // 2:07d}"


def write_tar(path: Path, files: Files) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def write_dir(root: Path, files: Files) -> Path:
    for name, payload in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
    return root / "aclImdb"


@pytest.fixture
def make_archive(tmp_path: Path) -> Callable[..., Path]:
    def make(files: Files | None = None, name: str = "aclImdb_v1.tar.gz") -> Path:
        return write_tar(tmp_path / name, tiny_imdb_files() if files is None else files)

    return make
