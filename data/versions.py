"""Dataset versions: a source (IMDB, or the synthetic corpus) plus the intake batches accepted up
to a version of the intake store (`data.store`).

A training set is the source's training split plus every accepted batch up to the store version,
without the held-out rows of each batch: those form the `new` split, never trained on, on which a
candidate is judged against the champion for data that has just arrived. The version's name
(`imdb@c40f74a1+intake.v3`) goes on every MLflow run as the `data_version` tag, and its digest
keys the prepared-data cache, so a new batch means new prepared data and nothing else does.

A version may also keep only part of the source's training split (`train_subset`: a list of review
ids, e.g. the baseline `python -m data.intake simulate` writes), so a stream simulated from IMDB's
own training reviews does not train on its future batches from the start. The subset's digest
goes in the name (`imdb@c40f74a1~subset.5e0b11f2+intake.v3`) and the cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
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
    train_subset: str | None = None  # file of the source training reviews kept (None: all)
    subset_digest: str | None = None

    @property
    def name(self) -> str:
        base = f"{self.dataset}@{self.source_hash[:8]}"
        if self.subset_digest is not None:
            base += f"~subset.{self.subset_digest[:8]}"
        return base if self.intake_version is None else f"{base}+intake.v{self.intake_version}"

    @property
    def is_source_alone(self) -> bool:
        """The whole source and nothing else (its prepared data keeps the source's own key)."""
        return self.intake_version is None and self.subset_digest is None

    @property
    def digest(self) -> str:
        """Hash of everything the version holds: the cache key of its prepared data."""
        parts = (self.dataset, self.source_hash, str(self.intake_digest))
        if self.subset_digest is not None:  # versions without a subset keep their old digest
            parts += (self.subset_digest,)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def read_subset(path: str | Path) -> frozenset[str]:
    """Review ids from a subset file: a `simulate` manifest (`baseline_review_ids`) or one id a
    line. An empty subset is refused: it would train on nothing."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"training subset {path} cannot be read: {error}") from error
    if path.suffix == ".json":
        try:
            ids = json.loads(text)["baseline_review_ids"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(
                f"training subset {path} is not a simulate manifest with baseline_review_ids"
            ) from error
    else:
        ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"training subset {path} lists no review ids")
    return frozenset(map(str, ids))


def subset_digest(ids: frozenset[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def keep_train_subset(frame: pd.DataFrame, version: DataVersion) -> pd.DataFrame:
    """The source's reviews with the training split cut to the version's subset (others whole)."""
    if version.train_subset is None:
        return frame
    ids = read_subset(version.train_subset)
    if subset_digest(ids) != version.subset_digest:
        raise ValueError(
            f"training subset {version.train_subset} changed since {version.name} was resolved"
        )
    keep = (frame["split"] != "train") | frame["review_id"].astype(str).isin(ids)
    if not (keep & (frame["split"] == "train")).any():
        raise ValueError(
            f"training subset {version.train_subset} matches none of the {version.dataset} "
            "training reviews (is it from another dataset?)"
        )
    return frame.loc[keep].reset_index(drop=True)


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
    train_subset: str | Path | None = None,
) -> DataVersion:
    """The data version to train on: the source (cut to `train_subset` when given) plus the store
    at `version` (default: latest).

    An empty or absent store, or `use_intake=False`, gives the source alone.
    """
    source = DataVersion(dataset, source_hash)
    if train_subset is not None:
        subset = str(Path(train_subset).resolve())
        source = replace(
            source, train_subset=subset, subset_digest=subset_digest(read_subset(subset))
        )
    if not use_intake:
        return source
    latest = store_version(store)
    if latest is None:
        return source
    if version is None:
        version = latest
    if not 0 <= version <= latest:
        raise ValueError(f"intake store version {version} does not exist (latest: {latest})")
    rows = read_accepted(store, version, columns=["norm_hash", "label", "holdout"])
    if rows.empty:
        return source
    return replace(
        source, intake_version=version, intake_digest=intake_digest(rows), intake_rows=len(rows)
    )


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
