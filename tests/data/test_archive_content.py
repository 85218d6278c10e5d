"""Bad archive contents are refused by name: ratings, ids, duplicates, oversized members, links."""

from __future__ import annotations

import io
import logging
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from data import imdb
from data.imdb import ArchiveContentError, DataSourceError, read_imdb, source_sha256
from tests.data.conftest import Files, tiny_imdb_files, write_dir, write_tar

BAD_NAMES = {
    "rating-0": ("aclImdb/train/pos/5_0.txt", "rating 0 is outside 1-10"),
    "rating-11": ("aclImdb/train/pos/5_11.txt", "rating 11 is outside 1-10"),
    "rating-999": ("aclImdb/test/neg/5_999.txt", "rating 999 is outside 1-10"),
    "rating-20-digits": ("aclImdb/train/pos/5_" + "9" * 20 + ".txt", "outside 1-10"),
    "id-20-digits": ("aclImdb/train/pos/" + "9" * 20 + "_8.txt", "20 digits"),
    "pos-rated-3": ("aclImdb/train/pos/5_3.txt", "wrong side for a 'pos' review"),
    "neg-rated-8": ("aclImdb/test/neg/5_8.txt", "wrong side for a 'neg' review"),
    "neg-rated-5": ("aclImdb/test/neg/5_5.txt", "wrong side"),  # 5 and 6 are in no class
}


def sources(tmp_path: Path, files: Files) -> list[Path]:
    """The same files as a tarball and as an extracted folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return [write_tar(tmp_path / "a.tar.gz", files), write_dir(tmp_path / "extracted", files)]


@pytest.mark.parametrize("member, message", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_ratings_and_ids_are_refused_naming_the_member(tmp_path, member, message) -> None:
    files = tiny_imdb_files() | {member: b"A review."}
    for source in sources(tmp_path, files):
        with pytest.raises(ArchiveContentError, match=message) as error:
            read_imdb(source)
        assert member in str(error.value) and isinstance(error.value, ValueError)


def write_tar_entries(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in entries:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def test_a_member_listed_twice_is_refused(tmp_path) -> None:
    entries = list(tiny_imdb_files().items())
    entries.append(("aclImdb/train/pos/1_8.txt", b"Appended again."))
    with pytest.raises(ArchiveContentError, match="repeats review train/pos/1") as error:
        read_imdb(write_tar_entries(tmp_path / "twice.tar.gz", entries))
    assert "aclImdb/train/pos/1_8.txt" in str(error.value)


@pytest.mark.parametrize("other", ["aclImdb/train/pos/01_8.txt", "aclImdb/train/pos/1_9.txt"])
def test_one_review_id_under_two_names_is_refused(tmp_path, other) -> None:
    files = tiny_imdb_files() | {other: b"Same id, another name."}  # next to 1_8.txt
    for source in sources(tmp_path, files):
        with pytest.raises(ArchiveContentError, match="repeats review train/pos/1"):
            read_imdb(source)


def test_a_urls_file_listed_twice_is_refused(tmp_path) -> None:
    entries = list(tiny_imdb_files().items())
    entries.append(("aclImdb/test/urls_neg.txt", b"http://www.imdb.com/title/tt0000099/"))
    with pytest.raises(ArchiveContentError, match="urls_neg.txt appears twice"):
        read_imdb(write_tar_entries(tmp_path / "twice.tar.gz", entries))


def test_a_huge_review_is_refused_without_being_read_whole(tmp_path) -> None:
    member = "aclImdb/train/pos/7_10.txt"
    files = tiny_imdb_files() | {member: b"a" * (8 * imdb.MAX_REVIEW_BYTES)}
    for source in sources(tmp_path, files):
        tracemalloc.start()
        try:
            with pytest.raises(ArchiveContentError, match="over the limit") as error:
                read_imdb(source)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert member in str(error.value)
        assert peak < imdb.MAX_REVIEW_BYTES  # the 8 MiB member was never read whole


def test_the_size_cap_is_inclusive(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(imdb, "MAX_REVIEW_BYTES", 64)
    at_cap = tiny_imdb_files() | {"aclImdb/train/pos/7_10.txt": b"x" * 64}
    for source in sources(tmp_path / "ok", at_cap):
        assert len(read_imdb(source)) == 13
    over = tiny_imdb_files() | {"aclImdb/train/pos/7_10.txt": b"x" * 65}
    for source in sources(tmp_path / "over", over):
        with pytest.raises(ArchiveContentError, match="over the limit of 64"):
            read_imdb(source)


class _CountingReader(io.BytesIO):
    def __init__(self, payload: bytes) -> None:
        super().__init__(payload)
        self.asked: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(-1 if size is None else size)
        return super().read(size)


def test_a_member_is_read_at_most_one_byte_past_the_cap() -> None:
    # A size header that lies (or a file that grows) is still never read whole.
    handle = _CountingReader(b"a" * (4 * imdb.MAX_REVIEW_BYTES))
    with pytest.raises(ArchiveContentError, match="more than"):
        imdb._read_capped(handle, "aclImdb/train/pos/7_10.txt", size=10)
    assert sum(handle.asked) == imdb.MAX_REVIEW_BYTES + 1


def test_links_in_an_extracted_folder_are_skipped_not_followed(tmp_path, caplog) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"PRIVATE text from outside the dataset")
    folder = write_dir(tmp_path / "extracted", tiny_imdb_files())
    linked = folder / "train" / "pos" / "0_7.txt"
    linked.unlink()
    linked.symlink_to(secret)
    (folder / "train" / "pos" / "5_9.txt").symlink_to(secret)  # a link with no regular twin
    urls = folder / "test" / "urls_pos.txt"
    urls.unlink()
    urls.symlink_to(secret)

    with caplog.at_level(logging.WARNING, logger="data.imdb"):
        frame = read_imdb(folder)
    assert not frame["text"].str.contains("PRIVATE").any()
    assert {"train/pos/0_7", "train/pos/5_9"}.isdisjoint(frame["review_id"])
    assert frame.loc[frame["review_id"].str.startswith("test/pos/"), "movie"].isna().all()
    assert "3 symbolic link(s)" in caplog.text and "train/pos/0_7.txt" in caplog.text

    digest = source_sha256(folder)  # the cache key ignores what links point at, too
    secret.write_bytes(b"changed")
    assert source_sha256(folder) == digest


def test_a_linked_class_folder_is_not_followed(tmp_path) -> None:
    folder = write_dir(tmp_path / "extracted", tiny_imdb_files())
    elsewhere = write_dir(tmp_path / "elsewhere", tiny_imdb_files())
    for path in (folder / "test" / "neg").iterdir():
        path.unlink()
    (folder / "test" / "neg").rmdir()
    (folder / "test" / "neg").symlink_to(elsewhere / "test" / "neg", target_is_directory=True)
    with pytest.raises(DataSourceError, match="lacks test/neg"):
        read_imdb(folder)


def test_a_linked_dataset_root_is_the_users_choice(tmp_path) -> None:
    folder = write_dir(tmp_path / "extracted", tiny_imdb_files())
    (tmp_path / "via-link").mkdir()
    (tmp_path / "via-link" / "aclImdb").symlink_to(folder, target_is_directory=True)
    assert len(read_imdb(tmp_path / "via-link")) == 12
    assert source_sha256(tmp_path / "via-link") == source_sha256(folder)


def test_links_inside_a_tarball_are_never_followed(tmp_path) -> None:
    path = tmp_path / "links.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in tiny_imdb_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        for kind, name in ((tarfile.SYMTYPE, "5_9.txt"), (tarfile.LNKTYPE, "6_9.txt")):
            link = tarfile.TarInfo(f"aclImdb/train/pos/{name}")
            link.type, link.linkname = kind, "/etc/hostname"
            archive.addfile(link)
    frame = read_imdb(path)
    assert len(frame) == 12 and {"train/pos/5_9", "train/pos/6_9"}.isdisjoint(frame["review_id"])
