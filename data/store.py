"""The versioned store of accepted new reviews: an append-only Delta Lake table.

Each intake batch is one append, so one Delta commit and one table version: a batch is in the
table whole or not at all, and a crash before the commit leaves only unreferenced files that no
reader sees. Commits are optimistic and never rebased here (`max_commit_retries=0`): a writer
that finds another batch committed since it read the table gets `StoreConflict`, re-checks its
rows against the new version and tries again (see `data.intake.ingest_file`). Each commit carries
the batch id, its source file and its row counts, which `store_history` reads back.

Refused rows of a batch go to `<store>/_quarantine/<batch_id>.parquet`. The folder's name starts
with an underscore because Delta's full vacuum deletes every other file under the table's root
that the log does not reference.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from config import get_settings
from data.cache import atomic_write_bytes

log = logging.getLogger(__name__)

ACCEPTED_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),  # intake/<batch_id>/<row of the source file>
        ("batch_id", pa.string()),  # hash of the source file's bytes
        ("source_file", pa.string()),
        ("text", pa.string()),
        ("label", pa.int64()),  # 1 positive
        ("rating", pa.int64()),  # 1-10 or null
        ("movie", pa.string()),
        ("source", pa.string()),
        ("collected_at", pa.timestamp("us", tz="UTC")),
        ("accepted_at", pa.timestamp("us", tz="UTC")),
        ("norm_hash", pa.string()),  # SHA-256 of the standardised text
        ("holdout", pa.bool_()),  # never trained on; judges promotion on new data
    ]
)
ACCEPTED_COLUMNS = ACCEPTED_SCHEMA.names
QUARANTINE_DIR = "_quarantine"
_META = "imdb.intake"  # the commit-info key holding the batch's description


class StoreConflict(RuntimeError):
    """Another writer committed to the store after this one read it."""


def default_store() -> Path:
    """`IMDB_SENTIMENT_INTAKE_STORE`, else `<cache_dir>/intake/reviews`."""
    settings = get_settings()
    return settings.intake_store or settings.cache_dir / "intake" / "reviews"


def _root(store: str | Path | None) -> Path:
    return Path(store).expanduser() if store is not None else default_store()


def _open(store: str | Path | None, version: int | None = None) -> DeltaTable | None:
    root = _root(store)
    if not DeltaTable.is_deltatable(str(root)):
        if version is not None:
            raise ValueError(f"the intake store {root} has no version {version}: it is empty")
        return None
    if version is None:
        return DeltaTable(str(root))
    if version < 0:
        raise ValueError(f"store versions start at 0, got {version}")
    table = DeltaTable(str(root))
    if version > table.version():
        raise ValueError(
            f"the intake store {root} has no version {version} (latest: {table.version()})"
        )
    return DeltaTable(str(root), version=version)


def store_version(store: str | Path | None = None) -> int | None:
    """The store's latest version; None while nothing has been accepted."""
    table = _open(store)
    return None if table is None else table.version()


def _empty() -> pd.DataFrame:
    return ACCEPTED_SCHEMA.empty_table().to_pandas()


def _to_pandas(table: DeltaTable, columns: list[str] | None = None) -> pd.DataFrame:
    frame = table.to_pandas(columns=columns)
    if "review_id" in frame.columns:  # deterministic order whatever the file layout
        frame = frame.sort_values("review_id", kind="stable")
    return frame.reset_index(drop=True)


def read_accepted(
    store: str | Path | None = None,
    version: int | None = None,
    *,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Every accepted row of every batch up to `version` (default: the latest).

    Columns as `ACCEPTED_SCHEMA`; an empty store gives an empty frame with those columns.
    """
    table = _open(store, version)
    if table is None:
        frame = _empty()
        return frame[columns] if columns is not None else frame
    return _to_pandas(table, columns)


def accepted_since(
    store: str | Path | None, version: int | None, *, until: int | None = None
) -> pd.DataFrame:
    """Rows of the batches committed after `version` up to `until` (default: the latest).

    `version=None` means "before the first batch": every accepted row. The table is append-only
    and each batch is one commit, so this is exactly the batches that version did not hold.
    """
    current = read_accepted(store, until)
    if version is None:
        return current
    before = set(read_accepted(store, version, columns=["batch_id"])["batch_id"])
    return current.loc[~current["batch_id"].isin(before)].reset_index(drop=True)


@dataclass(frozen=True)
class Snapshot:
    """What a writer read: the version, the hashes and batch ids it holds, the table itself."""

    version: int | None
    norm_hashes: frozenset[str]
    batch_ids: frozenset[str]
    table: DeltaTable | None


def snapshot(store: str | Path | None = None) -> Snapshot:
    table = _open(store)
    if table is None:
        return Snapshot(None, frozenset(), frozenset(), None)
    seen = table.to_pandas(columns=["norm_hash", "batch_id"])
    return Snapshot(
        table.version(), frozenset(seen["norm_hash"]), frozenset(seen["batch_id"]), table
    )


def append_batch(
    store: str | Path | None, base: Snapshot, rows: pd.DataFrame, description: dict
) -> int:
    """Append `rows` as one commit on top of `base`; returns the new version.

    Raises `StoreConflict` when any commit landed after `base` was read (or, for an empty
    store, when another writer created the table first): nothing of ours is then visible.
    """
    data = pa.Table.from_pandas(
        rows[ACCEPTED_COLUMNS], schema=ACCEPTED_SCHEMA, preserve_index=False
    )
    properties = CommitProperties(
        custom_metadata={_META: json.dumps(description, sort_keys=True)}, max_commit_retries=0
    )
    root = _root(store)
    try:
        if base.table is None:  # "error": another writer's new table must not be appended to
            root.mkdir(parents=True, exist_ok=True)
            write_deltalake(str(root), data, mode="error", commit_properties=properties)
            return 0
        write_deltalake(base.table, data, mode="append", commit_properties=properties)
        return int(base.version) + 1  # type: ignore[arg-type]
    except CommitFailedError as error:
        raise StoreConflict(f"another intake committed to {root} first ({error})") from error
    except DeltaError as error:
        if base.table is None and "already exists" in str(error):
            raise StoreConflict(f"another intake created {root} first") from error
        raise


def store_history(store: str | Path | None = None) -> pd.DataFrame:
    """One row per version, oldest first: version, committed (UTC), rows, held_out, batch_id,
    source_file (the last three from the commit's description; empty for foreign commits)."""
    table = _open(store)
    columns = ["version", "committed", "rows", "held_out", "batch_id", "source_file"]
    if table is None:
        return pd.DataFrame(columns=columns)
    records = []
    for commit in table.history():
        try:
            described = json.loads(commit.get(_META) or "{}")
        except (TypeError, ValueError):
            described = {}
        metrics = commit.get("operationMetrics") or {}
        records.append(
            {
                "version": int(commit["version"]),
                "committed": pd.Timestamp(int(commit["timestamp"]), unit="ms", tz="UTC"),
                "rows": int(described.get("rows", metrics.get("num_added_rows", 0))),
                "held_out": described.get("held_out"),
                "batch_id": described.get("batch_id", ""),
                "source_file": described.get("source_file", ""),
            }
        )
    return pd.DataFrame(records, columns=columns).sort_values("version").reset_index(drop=True)


def quarantine_path(store: str | Path | None, batch_id: str) -> Path:
    return _root(store) / QUARANTINE_DIR / f"{batch_id}.parquet"


def _text(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def write_quarantine(
    store: str | Path | None, batch_id: str, refused: pd.DataFrame, *, accepted: int
) -> Path:
    """The refused rows of a batch (all values as text, plus `reason`), written atomically.

    The file records how many rows the batch accepted: a file that accepted nothing leaves no
    commit, and its quarantine entry is what marks it as already ingested.
    """
    as_text = {  # a column may mix types: every value but the row number is kept as text
        c: pd.Series([_text(v) for v in refused[c]], index=refused.index, dtype="string")
        for c in refused.columns
        if c != "row"
    }
    table = pa.Table.from_pandas(refused.assign(**as_text), preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"imdb.accepted"] = str(accepted).encode()
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), buffer)
    return atomic_write_bytes(quarantine_path(store, batch_id), buffer.getvalue())


def read_quarantine(store: str | Path | None, batch_id: str) -> pd.DataFrame:
    return pd.read_parquet(quarantine_path(store, batch_id))


def quarantined_whole(store: str | Path | None, batch_id: str) -> bool:
    """True when `batch_id` was ingested before and every one of its rows was refused."""
    path = quarantine_path(store, batch_id)
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return metadata.get(b"imdb.accepted") == b"0"
