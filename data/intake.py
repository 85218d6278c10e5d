"""Intake of new labelled reviews: validate every row of a file, store the accepted ones as one
immutable batch of the versioned store (`data.store`), quarantine the rest with a reason.

    python -m data.intake add FILE [FILE ...]     CSV, JSONL or Parquet (by extension)
    python -m data.intake drain                   every file in the inbox (IMDB_SENTIMENT_INBOX)
    python -m data.intake status                  the store's versions
    python -m data.intake simulate --out DIR      weekly batch files, or a drifted one (--drift)

A file has columns `text` and `label` (0/1, or negative/positive in any case), optionally `rating`
(1-10), `movie`, `source`, `collected_at`. Every row is checked by one pandera schema; a refused
row gets the first reason of `REASONS` it fails. The batch id is the hash of the file's bytes, so
the same file added twice adds nothing the second time. Duplicates are found by the hash of the
standardised text (`data.text.standardize`), within the file and against everything accepted;
a review whose standardised text is that of a test review is refused (leakage).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from config import get_settings
from data import store as st
from data.cache import atomic_write_parquet, atomic_write_text, load_entry
from data.intake_rules import (
    MAX_REVIEW_CHARS,
    IntakeError,
    holdout_flag,
    leakage_hashes,
    norm_hash,
    read_rows,
    validate_rows,
)

log = logging.getLogger(__name__)

EVENT_NAME = "imdb.data.batch.accepted"
MAX_COMMIT_ATTEMPTS = 30
_HASHES_VERSION = "1"  # bump when `norm_hash` changes: cached test-split hashes are rebuilt

__all__ = [
    "EVENT_NAME",
    "MAX_REVIEW_CHARS",
    "DrainedFile",
    "IntakeError",
    "IntakeResult",
    "default_inbox",
    "drain_inbox",
    "holdout_flag",
    "ingest_file",
    "leakage_hashes",
    "load_leakage_hashes",
    "main",
    "norm_hash",
]


@dataclass(frozen=True)
class IntakeResult:
    """What one file's intake did. `version`: the store version holding the batch (None when
    nothing was accepted and the store is empty)."""

    batch_id: str
    accepted: int
    refused_by_reason: dict[str, int]
    version: int | None
    duplicate_file: bool
    source: str = ""
    held_out: int = 0
    quarantine: Path | None = None
    conflicts: int = 0  # commits of other intakes this one had to re-check against

    @property
    def refused(self) -> int:
        return sum(self.refused_by_reason.values())

    def summary(self) -> str:
        name = self.source or self.batch_id
        if self.duplicate_file:
            return (
                f"{name}: batch {self.batch_id} was already ingested "
                f"(store version {self.version}); nothing added"
            )
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.refused_by_reason.items()))
        refused = f"refused {self.refused}" + (f" ({reasons})" if reasons else "")
        where = f"store version {self.version}" if self.accepted else "no new version of the store"
        return (
            f"{name}: accepted {self.accepted} ({self.held_out} held out), {refused}; "
            f"batch {self.batch_id} -> {where}"
        )


def _prefect_api_available() -> bool:
    """A Prefect API to send events to: one configured (PREFECT_API_URL), or the one the current
    flow run uses. Otherwise `emit_event` would start a temporary server just for one event."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.settings import PREFECT_API_URL

    in_run = FlowRunContext.get() is not None or TaskRunContext.get() is not None
    return bool(PREFECT_API_URL.value()) or in_run


def _emit_accepted(result: IntakeResult) -> None:
    """Tell Prefect (automations, the UI) a batch landed; never fails the intake."""
    try:
        if not _prefect_api_available():
            log.info("No Prefect API (PREFECT_API_URL unset, no flow run): %s not sent", EVENT_NAME)
            return
        from prefect.events import emit_event

        emit_event(
            event=EVENT_NAME,
            resource={"prefect.resource.id": f"imdb.intake.{result.batch_id}"},
            payload={
                "rows": result.accepted,
                "version": result.version,
                "held_out": result.held_out,
                "refused": result.refused,
                "source_file": result.source,
            },
        )
    except Exception as error:  # no server, a full queue, an event too large: log and go on
        log.warning("Could not emit %s for batch %s: %s", EVENT_NAME, result.batch_id, error)


def _accepted_rows(
    rows: pd.DataFrame, batch_id: str, source_file: str, now: pd.Timestamp
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review_id": [f"intake/{batch_id}/{n}" for n in rows.index],
            "batch_id": batch_id,
            "source_file": source_file,
            "text": rows["text"].astype(object),
            "label": rows["label"].astype("int64"),
            "rating": pd.array(rows["rating"].tolist(), dtype="Int64"),
            "movie": rows["movie"].astype(object),
            "source": rows["source"].astype(object),
            "collected_at": pd.to_datetime(rows["collected_at"].tolist(), utc=True),
            "accepted_at": now,
            "norm_hash": rows["norm_hash"].astype(object),
            "holdout": rows["norm_hash"].map(holdout_flag).astype(bool),
        }
    ).reset_index(drop=True)


def _refused_rows(raw: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    refused = raw.loc[reasons.notna()].drop(columns=["_readable"], errors="ignore")
    refused = refused.assign(text=refused["text"].map(_clip))
    return refused.assign(reason=reasons[reasons.notna()]).rename_axis("row").reset_index()


def _clip(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_REVIEW_CHARS:
        return value[:MAX_REVIEW_CHARS] + f" [... {len(value) - MAX_REVIEW_CHARS} chars cut]"
    return value


def ingest_file(
    path: str | Path,
    *,
    leak_hashes: Collection[str],
    store: str | Path | None = None,
    now: pd.Timestamp | None = None,
    emit: bool = True,
) -> IntakeResult:
    """Validate one file and append its accepted rows to the store as one batch.

    `leak_hashes`: normalised-text hashes of the test reviews (`leakage_hashes`,
    `load_leakage_hashes`); matching rows are refused. Raises `IntakeError` when the file as a
    whole cannot be used (unreadable, unknown format, a required column missing).
    """
    path = Path(path)
    batch_id, raw = read_rows(path)
    source_file = path.name
    now = pd.Timestamp.now(tz="UTC").floor("us") if now is None else now
    conflicts = 0
    for _attempt in range(MAX_COMMIT_ATTEMPTS):
        base = st.snapshot(store)
        if batch_id in base.batch_ids or st.quarantined_whole(store, batch_id):
            log.info("Batch %s (%s) was already ingested", batch_id, source_file)
            return IntakeResult(batch_id, 0, {}, base.version, True, source_file)
        reasons, canonical = validate_rows(raw, known=base.norm_hashes, leak=leak_hashes)
        accepted = _accepted_rows(canonical.loc[reasons.isna()], batch_id, source_file, now)
        refused = reasons.dropna().value_counts().sort_index()
        by_reason = {str(k): int(v) for k, v in refused.items()}
        # Before the commit: a crash after it still leaves the refusals on disk.
        quarantine = st.write_quarantine(
            store, batch_id, _refused_rows(raw, reasons), accepted=len(accepted)
        )
        held_out = int(accepted["holdout"].sum())
        if accepted.empty:
            return IntakeResult(
                batch_id, 0, by_reason, base.version, False, source_file, 0, quarantine, conflicts
            )
        description = {
            "batch_id": batch_id,
            "source_file": source_file,
            "rows": len(accepted),
            "held_out": held_out,
            "refused": by_reason,
        }
        try:
            version = st.append_batch(store, base, accepted, description)
        except st.StoreConflict as error:
            conflicts += 1
            log.info("%s; re-checking batch %s against the new version", error, batch_id)
            time.sleep(random.uniform(0.01, 0.05) * min(conflicts, 10))
            continue
        result = IntakeResult(
            batch_id,
            len(accepted),
            by_reason,
            version,
            False,
            source_file,
            held_out,
            quarantine,
            conflicts,
        )
        if emit:
            _emit_accepted(result)
        return result
    raise IntakeError(
        f"{path}: gave up after {MAX_COMMIT_ATTEMPTS} commit conflicts with other intakes; "
        "nothing of this file was added, run it again"
    )


def load_leakage_hashes(
    dataset: str = "imdb",
    data_path: str | Path | None = None,
    seed: int = 42,
    *,
    cache_dir: Path | None = None,
) -> frozenset[str]:
    """The test split's normalised hashes, cached as parquet keyed by the source's hash."""
    from data.prepare import hash_source, load_reviews  # parses IMDB only when needed

    digest = hash_source(dataset, data_path, seed)
    folder = cache_dir or get_settings().data_cache_dir
    path = folder / f"test-hashes-{dataset}-{digest[:16]}-v{_HASHES_VERSION}.parquet"
    cached = load_entry(path, lambda p: frozenset(pd.read_parquet(p)["norm_hash"]))
    if cached is not None:
        return cached
    frame, _ = load_reviews(dataset, data_path, seed, known_hash=digest)
    hashes = leakage_hashes(frame)
    atomic_write_parquet(path, pd.DataFrame({"norm_hash": sorted(hashes)}))
    return hashes


def read_hash_file(path: str | Path) -> frozenset[str]:
    """Hashes from a parquet file (column `norm_hash`) or a text file (one per line)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return frozenset(pd.read_parquet(path, columns=["norm_hash"])["norm_hash"].dropna())
    lines = path.read_text(encoding="utf-8").split()
    return frozenset(line.strip() for line in lines if line.strip())


# --- the inbox ---------------------------------------------------------------------------------


def default_inbox() -> Path:
    """`IMDB_SENTIMENT_INBOX`, else `<cache_dir>/inbox`."""
    settings = get_settings()
    return settings.intake_inbox or settings.cache_dir / "inbox"


@dataclass(frozen=True)
class DrainedFile:
    name: str
    result: IntakeResult | None  # None when the file failed as a whole
    error: str | None = None
    moved_to: Path | None = None
    notes: list[str] = field(default_factory=list)


def _move(path: Path, folder: Path, tag: str) -> Path | None:
    """Move `path` into `folder` without replacing anything there; None if it vanished (another
    drain moved it first)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{tag}{path.suffix}"
    if target.exists():
        target = folder / f"{path.stem}.{tag}.{os.getpid()}.{time.time_ns()}{path.suffix}"
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def _inbox_files(inbox: Path) -> Iterator[Path]:
    for path in sorted(inbox.iterdir()):
        # Hidden names are files still being written (write to ".name", then rename).
        if path.name.startswith(".") or path.suffix in (".tmp", ".part"):
            continue
        if path.is_symlink():
            log.warning("Skipping %s: a symbolic link (inbox files must be regular files)", path)
        elif path.is_file():
            yield path


def drain_inbox(
    inbox: str | Path | None = None,
    *,
    leak_hashes: Collection[str],
    store: str | Path | None = None,
    emit: bool = True,
) -> list[DrainedFile]:
    """Ingest every file of the inbox, oldest name first; each then moves to `done/` (processed,
    even if rows were refused or it was a duplicate) or `failed/` (with `<name>.error.txt`)."""
    inbox = Path(inbox) if inbox is not None else default_inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    drained = []
    for path in _inbox_files(inbox):
        stamp = time.strftime("%Y%m%dT%H%M%S")
        try:
            result = ingest_file(path, leak_hashes=leak_hashes, store=store, emit=emit)
        except IntakeError as error:
            if not path.exists():
                continue  # another drain took it first
            moved = _move(path, inbox / "failed", stamp)
            if moved is not None:
                atomic_write_text(moved.with_name(moved.name + ".error.txt"), f"{error}\n")
            drained.append(DrainedFile(path.name, None, str(error), moved))
            continue
        moved = _move(path, inbox / "done", result.batch_id)
        drained.append(DrainedFile(path.name, result, None, moved))
    return drained


# --- command line ------------------------------------------------------------------------------


def _leak_hashes(args: argparse.Namespace) -> frozenset[str]:
    if args.test_hashes is not None:
        return read_hash_file(args.test_hashes)
    return load_leakage_hashes(args.dataset, args.data_path, args.seed)


def _print_status(store: str | Path | None) -> int:
    history = st.store_history(store)
    root = store or st.default_store()
    if history.empty:
        print(f"{root}: empty (no batch accepted yet)")
        return 0
    total = int(history["rows"].sum())
    print(f"{root}: version {int(history['version'].max())}, {total} accepted rows")
    print(f"{'version':>7}  {'committed (UTC)':<20} {'rows':>6} {'held out':>8}  batch  file")
    for row in history.itertuples():
        held = "" if row.held_out is None or pd.isna(row.held_out) else int(row.held_out)
        stamp = row.committed.strftime("%Y-%m-%dT%H:%M:%SZ")
        print(
            f"{row.version:>7}  {stamp:<20} {row.rows:>6} {held:>8}  "
            f"{row.batch_id}  {row.source_file}"
        )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data.intake",
        description="Intake of new labelled reviews into the versioned store.",
    )
    parser.add_argument("--store", type=Path, help="Delta table (IMDB_SENTIMENT_INTAKE_STORE)")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    leak = argparse.ArgumentParser(add_help=False)
    leak.add_argument(
        "--test-hashes",
        type=Path,
        help="test-review hashes (parquet `norm_hash` or one per line) instead of the dataset's",
    )
    leak.add_argument("--dataset", choices=("imdb", "synthetic"), default="imdb")
    leak.add_argument("--data-path", help="IMDB archive or folder (as in the pipeline)")
    leak.add_argument("--seed", type=int, default=42)
    add = commands.add_parser("add", parents=[leak], help="ingest files")
    add.add_argument("files", nargs="+", type=Path)
    drain = commands.add_parser("drain", parents=[leak], help="ingest every file in the inbox")
    drain.add_argument("--inbox", type=Path, help="default: IMDB_SENTIMENT_INBOX")
    commands.add_parser("status", help="the store's versions")
    sim = commands.add_parser("simulate", help="write weekly batch files (or a drifted batch)")
    sim.add_argument("--out", type=Path, required=True)
    sim.add_argument("--weeks", type=int, default=3)
    sim.add_argument("--dataset", choices=("imdb", "synthetic"), default="imdb")
    sim.add_argument("--data-path")
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--baseline-fraction", type=float, default=0.5)
    sim.add_argument("--drift", action="store_true", help="write one drifted synthetic batch")
    sim.add_argument("--rows", type=int, default=400, help="rows of the drifted batch")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if args.command == "status":
        return _print_status(args.store)
    if args.command == "simulate":
        from data.intake_sim import simulate_command

        return simulate_command(args)
    leak = _leak_hashes(args)
    failed = 0
    if args.command == "add":
        for path in args.files:
            try:
                print(ingest_file(path, leak_hashes=leak, store=args.store).summary())
            except IntakeError as error:
                print(f"{path.name}: not ingested: {error}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    drained = drain_inbox(args.inbox, leak_hashes=leak, store=args.store)
    for item in drained:
        if item.result is not None:
            print(item.result.summary())
        else:
            print(f"{item.name}: moved to failed/: {item.error}", file=sys.stderr)
            failed += 1
    if not drained:
        print(f"{args.inbox or default_inbox()}: no file to ingest")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
