"""Giving freed heap memory back during scoring loops (models/memory.py)."""

from __future__ import annotations

import sys

import pytest

from models import memory


def test_trimming_yields_every_item_and_trims_every_n_and_at_the_end(monkeypatch) -> None:
    calls: list[int] = []
    seen: list[int] = []

    def count() -> bool:
        calls.append(len(seen))  # how many items had been handed out at each trim
        return True

    monkeypatch.setattr(memory, "release_free_memory", count)
    for item in memory.trimming(range(10), every=4):
        seen.append(item)
    assert seen == list(range(10))
    assert calls == [4, 8, 10]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_memory_reaches_the_c_library_on_linux() -> None:
    assert memory.release_free_memory() is True
