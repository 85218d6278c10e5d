"""Intake of new labelled reviews (data/intake.py, data/intake_rules.py, data/store.py).

Every test writes its own small files (made-up text, never real reviews) and its own store under
`tmp_path`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

import data.intake as intake
from config import PROJECT_ROOT
from data import store as st
from data.intake import (
    IntakeError,
    IntakeResult,
    drain_inbox,
    holdout_flag,
    ingest_file,
    leakage_hashes,
    load_leakage_hashes,
    main,
    norm_hash,
)
from data.intake_rules import MAX_REVIEW_CHARS, REASONS
from data.intake_sim import SLANG_NEGATIVE, SLANG_POSITIVE, drift_batch, weekly_batches
from data.synthetic import synthetic_reviews

TEST_REVIEW = "A review of the test split: the <b>ending</b> was superb!"
NO_LEAK: frozenset[str] = frozenset()


@pytest.fixture(autouse=True)
def no_prefect_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test talks to a Prefect server; the event tests say otherwise themselves."""
    monkeypatch.setattr(intake, "_prefect_api_available", lambda: False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def good(i: int, **extra: object) -> dict:
    return {"text": f"Made-up review number {i}: a lovely quiet film.", "label": 1, **extra}


def write(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)
    return path


def ingest(path: Path, store: Path, leak: frozenset[str] = NO_LEAK, **kw: object) -> IntakeResult:
    return ingest_file(path, leak_hashes=leak, store=store, **kw)


# --- refusals ----------------------------------------------------------------------------------

BAD_ROWS: dict[str, list[dict]] = {
    "schema": [{"text": 12345, "label": 1}],
    "empty_text": [
        {"text": "", "label": 1},
        {"text": "   \t ", "label": 0},
        {"text": "<br /><br /> ?!", "label": 0},
        {"text": None, "label": 1},
    ],
    "undecodable": [{"text": "broken \ufffd bytes", "label": 1}],
    "text_too_long": [{"text": "word " * (MAX_REVIEW_CHARS // 5) + "!", "label": 1}],
    "label": [{"text": "a label nobody knows", "label": "meh"}, {"text": "two", "label": 2}],
    "rating_range": [
        {"text": "rated zero", "label": 0, "rating": 0},
        {"text": "rated eleven", "label": 1, "rating": 11},
        {"text": "rated half", "label": 1, "rating": 7.5},
        {"text": "rated words", "label": 1, "rating": "great"},
    ],
    "rating_ambiguous": [
        {"text": "rated five", "label": 0, "rating": 5},
        {"text": "rated six", "label": 1, "rating": 6},
    ],
    "rating_label_mismatch": [
        {"text": "positive but rated three", "label": 1, "rating": 3},
        {"text": "negative but rated eight", "label": 0, "rating": 8},
    ],
    "bad_collected_at": [
        {"text": "when, though", "label": 1, "collected_at": "last tuesday"},
        {"text": "far future", "label": 1, "collected_at": "2999-01-01"},
    ],
}


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_each_refusal_reason_is_named_and_quarantined(
    reason: str, suffix: str, tmp_path: Path, store: Path
) -> None:
    bad = BAD_ROWS[reason]
    if suffix == ".parquet" and reason in ("schema", "label", "rating_range"):
        pytest.skip("a Parquet column has one type")
    path = write(tmp_path / f"batch{suffix}", [good(0), *bad])
    result = ingest(path, store)
    assert (result.accepted, result.refused_by_reason) == (1, {reason: len(bad)})
    quarantined = st.read_quarantine(store, result.batch_id)
    assert list(quarantined["reason"]) == [reason] * len(bad)
    assert list(quarantined["row"]) == list(range(1, len(bad) + 1))
    assert len(st.read_accepted(store)) == 1


def test_refusals_in_csv_files_unreadable_rows_and_bytes(tmp_path: Path, store: Path) -> None:
    lines = [
        b"text,label,rating",
        b'"A made-up review, fine.",1,8',
        b"one,two,three,four",  # four fields under a three-column header
        b'"not utf-8: caf\xe9",0,2',
        b'"a NUL\x00 inside",1,9',
        b'"A made-up review... FINE!",positive,7',  # the same text once standardised
        b"",
    ]
    path = tmp_path / "batch.csv"
    path.write_bytes(b"\n".join(lines))
    result = ingest(path, store)
    assert result.accepted == 1
    assert result.refused_by_reason == {"unreadable": 1, "undecodable": 2, "duplicate_in_file": 1}


def test_bad_jsonl_lines_are_unreadable_rows(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "batch.jsonl"
    good_line = json.dumps(good(0))
    path.write_text(f'{good_line}\n{{"text": "cut off\n[1, 2]\n"\\ud800 alone"\n', "utf-8")
    result = ingest(path, store)
    assert (result.accepted, result.refused_by_reason) == (1, {"unreadable": 3})
    lone = tmp_path / "lone.jsonl"  # a lone surrogate inside a valid record is undecodable text
    lone.write_text('{"text": "x \\ud800 y", "label": 1}\n', "utf-8")
    assert ingest(lone, store).refused_by_reason == {"undecodable": 1}


def test_parquet_bytes_text_is_decoded_with_replacement(tmp_path: Path, store: Path) -> None:
    frame = pd.DataFrame({"text": [b"plain ascii text here", b"caf\xe9 bytes"], "label": [1, 0]})
    path = tmp_path / "bytes.parquet"
    frame.to_parquet(path)
    assert ingest(path, store).refused_by_reason == {"undecodable": 1}


def test_a_row_gets_the_first_reason_it_fails(tmp_path: Path, store: Path) -> None:
    # Empty text, a bad label and a bad rating at once: empty_text comes first in REASONS.
    path = write(tmp_path / "b.jsonl", [{"text": " ", "label": "x", "rating": 99}])
    assert ingest(path, store).refused_by_reason == {"empty_text": 1}
    assert REASONS.index("empty_text") < REASONS.index("label") < REASONS.index("rating_range")


def test_a_duplicate_of_a_refused_row_is_judged_on_its_own(tmp_path: Path, store: Path) -> None:
    rows = [{"text": "same words", "label": "bad"}, {"text": "Same words!", "label": 1}]
    result = ingest(write(tmp_path / "b.jsonl", rows), store)
    assert (result.accepted, result.refused_by_reason) == (1, {"label": 1})


def test_duplicates_of_accepted_reviews_are_refused(tmp_path: Path, store: Path) -> None:
    ingest(write(tmp_path / "first.csv", [good(0), good(1)]), store)
    again = {"text": good(1)["text"].upper().replace(":", " <br/>"), "label": 1}
    result = ingest(write(tmp_path / "second.csv", [again, good(2)]), store)
    assert (result.accepted, result.refused_by_reason) == (1, {"duplicate_accepted": 1})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"review": "x", "label": 1}], "missing required column"),
        ([{"text": "x", "sentiment": 1}], "missing required column"),
    ],
)
def test_a_file_without_the_required_columns_is_refused_whole(
    rows: list[dict], message: str, tmp_path: Path, store: Path
) -> None:
    with pytest.raises(IntakeError, match=message):
        ingest(write(tmp_path / "b.csv", rows), store)
    assert st.store_version(store) is None


def test_unknown_formats_and_empty_files_are_refused_whole(tmp_path: Path, store: Path) -> None:
    (tmp_path / "notes.txt").write_text("text,label\nx,1\n")
    with pytest.raises(IntakeError, match="unsupported file type"):
        ingest(tmp_path / "notes.txt", store)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(IntakeError, match="empty"):
        ingest(tmp_path / "empty.csv", store)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(IntakeError, match="Parquet"):
        ingest(tmp_path / "junk.parquet", store)


# --- labels, stored rows -----------------------------------------------------------------------


def test_label_spellings(tmp_path: Path, store: Path) -> None:
    spellings = ["0", "1", "negative", "POSITIVE", " Positive ", "Negative"]
    rows = [{"text": f"spelling {i}", "label": s} for i, s in enumerate(spellings)]
    result = ingest(write(tmp_path / "b.csv", rows), store)
    assert result.accepted == len(spellings)
    stored = st.read_accepted(store).sort_values("review_id")
    assert stored["label"].tolist() == [0, 1, 0, 1, 1, 0]
    pd.DataFrame({"text": ["bool yes", "bool no"], "label": [True, False]}).to_parquet(
        tmp_path / "bool.parquet"
    )
    pd.DataFrame({"text": ["float yes", "float no"], "label": [1.0, 0.0]}).to_parquet(
        tmp_path / "float.parquet"
    )
    assert ingest(tmp_path / "bool.parquet", store).accepted == 2
    assert ingest(tmp_path / "float.parquet", store).accepted == 2
    assert st.read_accepted(store)["label"].tolist()[-4:] == [1, 0, 1, 0]


def test_accepted_rows_carry_ids_hashes_and_optional_columns(tmp_path: Path, store: Path) -> None:
    rows = [
        good(
            0,
            rating=9,
            movie="tt001",
            source="forum",
            collected_at="2026-03-01T10:00:00.1234567+01:00",
        ),
        good(1),
    ]
    now = pd.Timestamp("2026-04-01T12:00:00Z")
    result = ingest(write(tmp_path / "b.csv", rows), store, now=now)
    stored = st.read_accepted(store)
    assert stored.columns.tolist() == st.ACCEPTED_COLUMNS
    assert stored["review_id"].tolist() == [
        f"intake/{result.batch_id}/0",
        f"intake/{result.batch_id}/1",
    ]
    first = stored.iloc[0]
    assert (first["rating"], first["movie"], first["source"]) == (9, "tt001", "forum")
    assert first["collected_at"] == pd.Timestamp("2026-03-01T09:00:00.123456Z")
    assert (stored["accepted_at"] == now).all()
    assert first["norm_hash"] == norm_hash(rows[0]["text"])
    assert pd.isna(stored.iloc[1]["rating"]) and pd.isna(stored.iloc[1]["movie"])


# --- idempotence, crashes, concurrency ---------------------------------------------------------


def test_the_same_file_twice_adds_nothing_the_second_time(tmp_path: Path, store: Path) -> None:
    path = write(tmp_path / "b.csv", [good(0), good(1), {"text": "", "label": 1}])
    first = ingest(path, store)
    second = ingest(path, store)
    assert (first.duplicate_file, first.accepted, first.version) == (False, 2, 0)
    assert (second.duplicate_file, second.accepted, second.version) == (True, 0, 0)
    assert second.batch_id == first.batch_id
    assert "already ingested" in second.summary()
    assert len(st.read_accepted(store)) == 2 and st.store_version(store) == 0
    refused_only = write(tmp_path / "r.csv", [{"text": " ", "label": 1}])
    assert not ingest(refused_only, store).duplicate_file
    assert ingest(refused_only, store).duplicate_file


def test_a_crash_before_the_append_leaves_nothing(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "b.csv", [good(0), good(1)])

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(st, "write_deltalake", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(path, store)
    monkeypatch.undo()
    monkeypatch.setattr(intake, "_prefect_api_available", lambda: False)
    assert st.store_version(store) is None and st.read_accepted(store).empty
    result = ingest(path, store)  # not taken for a duplicate: it was never added
    assert (result.duplicate_file, result.accepted, result.version) == (False, 2, 0)


def test_a_commit_conflict_rechecks_duplicates_against_the_new_version(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = write(tmp_path / "ours.csv", [good(0), good(1)])
    theirs = write(tmp_path / "theirs.csv", [good(1), good(2)])
    real_append = st.append_batch
    calls = []

    def append_after_another_intake(*args: object, **kwargs: object) -> int:
        calls.append(1)
        if len(calls) == 1:  # another intake commits between our read and our commit
            assert ingest(theirs, store).version == 0
        return real_append(*args, **kwargs)

    monkeypatch.setattr(st, "append_batch", append_after_another_intake)
    result = ingest(ours, store)
    assert (result.conflicts, result.version, result.accepted) == (1, 1, 1)
    assert result.refused_by_reason == {"duplicate_accepted": 1}
    stored = st.read_accepted(store)
    assert stored["norm_hash"].is_unique and len(stored) == 3


def test_concurrent_intakes_in_threads_keep_the_store_consistent(
    tmp_path: Path, store: Path
) -> None:
    shared = {"text": "The one review every file has.", "label": 1}
    paths = [
        write(tmp_path / f"f{k}.csv", [shared, *(good(100 * k + i) for i in range(5))])
        for k in range(4)
    ]
    paths.append(paths[0])  # the same file twice at once
    results: list[IntakeResult] = []
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            results.append(ingest(path, store))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    stored = st.read_accepted(store)
    assert stored["norm_hash"].is_unique
    assert len(stored) == 4 * 5 + 1
    assert sorted(r.version for r in results if r.accepted) == [0, 1, 2, 3]
    assert sum(r.duplicate_file for r in results) == 1
    assert st.store_history(store)["rows"].sum() == len(stored)


def test_concurrent_intakes_in_processes_keep_the_store_consistent(
    tmp_path: Path, store: Path
) -> None:
    shared = {"text": "Every process brings this one.", "label": 0}
    paths = [
        write(tmp_path / f"p{k}.jsonl", [shared, *(good(10 * k + i) for i in range(3))])
        for k in range(2)
    ]
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("")
    command = [sys.executable, "-m", "data.intake", "--store", str(store), "add"]
    env = {**os.environ, "PREFECT_API_URL": ""}
    processes = [
        subprocess.Popen(
            [*command, str(p), "--test-hashes", str(hashes)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in paths
    ]
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    stored = st.read_accepted(store)
    assert stored["norm_hash"].is_unique and len(stored) == 2 * 3 + 1
    assert st.store_version(store) == 1


# --- leakage -----------------------------------------------------------------------------------


def test_leakage_guard_refuses_test_reviews_in_any_spelling(tmp_path: Path, store: Path) -> None:
    reviews = pd.DataFrame(
        {"text": [TEST_REVIEW, "A training review, not a secret."], "split": ["test", "train"]}
    )
    leak = leakage_hashes(reviews)
    assert leak == {norm_hash(TEST_REVIEW)}
    rows = [
        {"text": "a review of the test split the ENDING was superb", "label": 1},
        {"text": "A training review, not a secret.", "label": 1},
    ]
    result = ingest(write(tmp_path / "b.csv", rows), store, leak)
    assert (result.accepted, result.refused_by_reason) == (1, {"test_leak": 1})


def test_leakage_hashes_are_cached_by_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("data.prepare.SYNTHETIC_SIZE", 200)  # a small corpus, its own hash
    hashes = load_leakage_hashes("synthetic", seed=3, cache_dir=tmp_path)
    test_texts = synthetic_reviews(200, seed=3).query("split == 'test'")["text"]
    assert hashes == {norm_hash(t) for t in test_texts}
    assert len(list(tmp_path.glob("test-hashes-synthetic-*.parquet"))) == 1

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached hashes were not used")

    monkeypatch.setattr("data.prepare.load_reviews", no_parsing)
    assert load_leakage_hashes("synthetic", seed=3, cache_dir=tmp_path) == hashes


# --- versions and holdout ----------------------------------------------------------------------


def test_versions_increase_and_reads_travel_in_time(tmp_path: Path, store: Path) -> None:
    assert st.store_version(store) is None and st.read_accepted(store).empty
    results = [
        ingest(write(tmp_path / f"w{k}.csv", [good(10 * k + i) for i in range(k + 1)]), store)
        for k in range(3)
    ]
    assert [r.version for r in results] == [0, 1, 2] and st.store_version(store) == 2
    assert [len(st.read_accepted(store, version=v)) for v in range(3)] == [1, 3, 6]
    assert set(st.read_accepted(store, version=0)["batch_id"]) == {results[0].batch_id}
    since = st.accepted_since(store, 0)
    assert set(since["batch_id"]) == {results[1].batch_id, results[2].batch_id}
    assert len(st.accepted_since(store, 0, until=1)) == 2
    assert len(st.accepted_since(store, None)) == 6 and st.accepted_since(store, 2).empty
    with pytest.raises(ValueError, match="no version 7"):
        st.read_accepted(store, version=7)
    history = st.store_history(store)
    assert history["version"].tolist() == [0, 1, 2]
    assert history["rows"].tolist() == [1, 2, 3]
    assert history["batch_id"].tolist() == [r.batch_id for r in results]


def test_holdout_is_deterministic_and_about_one_in_ten(tmp_path: Path) -> None:
    hashes = [norm_hash(f"review {i}") for i in range(4_000)]
    flags = [holdout_flag(h) for h in hashes]
    assert flags == [holdout_flag(h) for h in hashes]
    assert 0.08 < sum(flags) / len(flags) < 0.12
    rows = [good(i) for i in range(60)]
    a = ingest(write(tmp_path / "a.csv", rows), tmp_path / "one")
    b = ingest(write(tmp_path / "b.jsonl", rows[::-1]), tmp_path / "two")
    one, two = st.read_accepted(tmp_path / "one"), st.read_accepted(tmp_path / "two")
    assert dict(zip(one["norm_hash"], one["holdout"], strict=True)) == dict(
        zip(two["norm_hash"], two["holdout"], strict=True)
    )
    assert (one["holdout"] == one["norm_hash"].map(holdout_flag)).all()
    assert a.held_out == b.held_out == int(one["holdout"].sum())


# --- events ------------------------------------------------------------------------------------


def test_an_accepted_batch_emits_a_prefect_event(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict] = []
    monkeypatch.setattr(intake, "_prefect_api_available", lambda: True)
    monkeypatch.setattr("prefect.events.emit_event", lambda **kw: sent.append(kw))
    result = ingest(write(tmp_path / "b.csv", [good(0), good(1)]), store)
    assert len(sent) == 1
    assert sent[0]["event"] == "imdb.data.batch.accepted"
    assert sent[0]["resource"] == {"prefect.resource.id": f"imdb.intake.{result.batch_id}"}
    assert (sent[0]["payload"]["rows"], sent[0]["payload"]["version"]) == (2, 0)
    ingest(tmp_path / "b.csv", store)  # a duplicate file: no event
    ingest(write(tmp_path / "r.csv", [{"text": "", "label": 1}]), store)  # nothing accepted
    assert len(sent) == 1


def test_a_failing_event_never_fails_the_intake(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: object) -> None:
        raise ConnectionError("no Prefect server")

    monkeypatch.setattr(intake, "_prefect_api_available", lambda: True)
    monkeypatch.setattr("prefect.events.emit_event", broken)
    assert ingest(write(tmp_path / "b.csv", [good(0)]), store).accepted == 1
    assert "Could not emit" in caplog.text


# --- command line and inbox --------------------------------------------------------------------


def test_cli_add_prints_a_summary_and_status_lists_versions(
    tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "week.csv", [good(0), good(1), {"text": TEST_REVIEW, "label": 1}])
    hashes = tmp_path / "hashes.parquet"
    pd.DataFrame({"norm_hash": [norm_hash(TEST_REVIEW)]}).to_parquet(hashes)
    args = ["--store", str(store), "add", str(path), "--test-hashes", str(hashes)]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(
        r"week\.csv: accepted 2 \(\d held out\), refused 1 \(test_leak 1\); "
        r"batch [0-9a-f]{16} -> store version 0",
        line,
    ), line
    assert main(args) == 0
    assert "already ingested" in capsys.readouterr().out
    assert main(["--store", str(store), "status"]) == 0
    status = capsys.readouterr().out
    batch = st.read_accepted(store)["batch_id"].iloc[0]
    assert "version 0, 2 accepted rows" in status and batch in status and "week.csv" in status
    (tmp_path / "x.txt").write_text("")
    assert (
        main(["--store", str(store), "add", str(tmp_path / "x.txt"), "--test-hashes", str(hashes)])
        == 1
    )
    assert "unsupported file type" in capsys.readouterr().err


def test_drain_moves_files_to_done_or_failed(tmp_path: Path, store: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "a.csv", [good(0), good(1)])
    write(inbox / "b.jsonl", [good(2), {"text": "", "label": 1}])
    write(inbox / "c.csv", [{"review": "no text column", "label": 1}])
    (inbox / ".d.csv.partial").write_text("still being written")
    drained = drain_inbox(inbox, leak_hashes=NO_LEAK, store=store)
    assert [d.name for d in drained] == ["a.csv", "b.jsonl", "c.csv"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.csv", "b.jsonl"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["c.csv", "c.csv.error.txt"]
    assert "missing required column" in (inbox / "failed" / "c.csv.error.txt").read_text()
    assert sorted(p.name for p in inbox.iterdir()) == [".d.csv.partial", "done", "failed"]
    assert len(st.read_accepted(store)) == 3
    write(inbox / "a.csv", [good(0), good(1)])  # the same file arrives again
    again = drain_inbox(inbox, leak_hashes=NO_LEAK, store=store)
    assert again[0].result is not None and again[0].result.duplicate_file
    assert len(list((inbox / "done").glob("a*.csv"))) == 2


def test_drain_uses_the_inbox_setting(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import get_settings

    monkeypatch.setenv("IMDB_SENTIMENT_INBOX", str(tmp_path / "box"))
    monkeypatch.setenv("IMDB_SENTIMENT_INTAKE_STORE", str(store))
    get_settings.cache_clear()
    try:
        (tmp_path / "box").mkdir()
        write(tmp_path / "box" / "a.csv", [good(0)])
        assert main(["drain", "--test-hashes", str(write(tmp_path / "h.csv", []))]) == 0
        assert st.store_version() == 0 and st.default_store() == store
        assert (tmp_path / "box" / "done" / "a.csv").exists()
    finally:
        get_settings.cache_clear()


# --- simulation --------------------------------------------------------------------------------


def test_weekly_batches_split_training_movies_and_ingest(tmp_path: Path, store: Path) -> None:
    reviews = synthetic_reviews(400, seed=5)
    manifest = weekly_batches(reviews, tmp_path / "sim", weeks=3, baseline_fraction=0.5, seed=1)
    files = sorted((tmp_path / "sim").glob("week-*.csv"))
    assert [f.name for f in files] == ["week-01.csv", "week-02.csv", "week-03.csv"]
    baseline = set(manifest["baseline_movies"])
    weekly = pd.concat([pd.read_csv(f) for f in files])
    assert not baseline & set(weekly["movie"]) and set(weekly["movie"]) <= set(reviews["movie"])
    train = reviews.query("split == 'train'")
    assert manifest["baseline_rows"] + len(weekly) == len(train)
    leak = leakage_hashes(reviews)
    for path in files:
        result = ingest(path, store, leak)
        assert result.accepted > 0 and "test_leak" not in result.refused_by_reason


def test_a_drifted_batch_brings_slang_short_reviews_and_more_positives(tmp_path: Path) -> None:
    frame = drift_batch(200, seed=3, positive_share=0.8)
    assert (frame["label"] == "positive").mean() == pytest.approx(0.8)
    words = frame["text"].str.lower()
    assert words.str.contains("|".join(SLANG_POSITIVE + SLANG_NEGATIVE)).all()
    assert frame["text"].str.split().str.len().median() < 40
    assert main(["simulate", "--drift", "--out", str(tmp_path), "--rows", "50", "--seed", "3"]) == 0
    result = ingest(tmp_path / "drift-3.csv", tmp_path / "store")
    assert result.accepted + sum(result.refused_by_reason.values()) == 50
    assert result.accepted >= 45
