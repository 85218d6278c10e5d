"""Dataset versions: a source (IMDB, or the synthetic corpus) plus the intake batches accepted up
to a version of the intake store (`data.store`).

A training set is the source's training split plus every accepted batch up to the store version,
without the held-out rows of each batch: those form the `new` split, never trained on, on which a
candidate is judged against the champion for data that has just arrived. The version's name
(`imdb@c40f74a1+intake.v3`) goes on every MLflow run as the `data_version` tag, and its digest
keys the prepared-data cache, so a new batch means new prepared data and nothing else does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data.store import read_accepted, store_version

NEW_SPLIT = "new"  # held-out rows of the accepted batches
_INTAKE_COLUMNS = ["review_id", "text", "label", "rating", "movie", "norm_hash", "holdout"]


@dataclass(frozen=True)
class DataVersion:
    """What a model is trained on: the source's content hash and the intake store's version."""

    dataset: str
    source_hash: str
    intake_version: int | None = None  # None: the source alone
    intake_digest: str | None = None  # hash of the accepted rows up to that version
    intake_rows: int = 0

    @property
    def name(self) -> str:
        base = f"{self.dataset}@{self.source_hash[:8]}"
        return base if self.intake_version is None else f"{base}+intake.v{self.intake_version}"

    @property
    def digest(self) -> str:
        """Hash of everything the version holds: the cache key of its prepared data."""
        parts = (self.dataset, self.source_hash, str(self.intake_digest))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def intake_digest(rows: pd.DataFrame) -> str:
    """Order-free hash of accepted rows: their normalised texts, labels and holdout flags."""
    keys = sorted(
        f"{h}:{label}:{int(bool(hold))}"
        for h, label, hold in zip(rows["norm_hash"], rows["label"], rows["holdout"], strict=True)
    )
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def resolve_version(
    dataset: str,
    source_hash: str,
    store: str | Path | None = None,
    version: int | None = None,
    *,
    use_intake: bool = True,
) -> DataVersion:
    """The data version to train on: the source plus the store at `version` (default: latest).

    An empty or absent store, or `use_intake=False`, gives the source alone.
    """
    if not use_intake:
        return DataVersion(dataset, source_hash)
    latest = store_version(store)
    if latest is None:
        return DataVersion(dataset, source_hash)
    if version is None:
        version = latest
    if not 0 <= version <= latest:
        raise ValueError(f"intake store version {version} does not exist (latest: {latest})")
    rows = read_accepted(store, version, columns=["norm_hash", "label", "holdout"])
    if rows.empty:
        return DataVersion(dataset, source_hash)
    return DataVersion(dataset, source_hash, version, intake_digest(rows), len(rows))


def intake_reviews(version: DataVersion, store: str | Path | None = None) -> pd.DataFrame:
    """The accepted rows of `version` as reviews: `split` is train, or `new` for held-out rows."""
    if version.intake_version is None:
        return pd.DataFrame(columns=["review_id", "split", "text", "label", "rating", "movie"])
    rows = read_accepted(store, version.intake_version, columns=_INTAKE_COLUMNS)
    if intake_digest(rows) != version.intake_digest:
        raise ValueError(
            f"intake store {store or 'default'} at version {version.intake_version} no longer "
            f"holds what {version.name} was made of (was it rewritten or vacuumed?)"
        )
    return pd.DataFrame(
        {
            "review_id": rows["review_id"].astype(str),
            "split": rows["holdout"].map({True: NEW_SPLIT, False: "train"}),
            "text": rows["text"].astype(str),
            "label": rows["label"].astype(int),
            "rating": rows["rating"].astype(float),
            "movie": rows["movie"].astype("object"),
        }
    )
