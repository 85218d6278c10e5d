"""Prepared data without some training reviews: the `drop_label_issues` flow option.

Which reviews are likely mislabelled is decided upstream (`analysis.errors.label_issues`, from
out-of-sample probabilities); this module only removes the given training reviews from a prepared
folder and records that it did. The vocabulary and every other split stay as they are, so a model
trained on the cleaned data is scored on exactly the same encoded test reviews as one trained on
all of it, and the effect of the removal can be measured.

The new folder's data version is the old one plus `+clean.<digest8>` (the digest of the removed
ids; every MLflow run tags it), and `PreparedData.dropped_label_issues` holds the count (training
logs it as the `label_issues_dropped` param). Its ids are listed one a line in `dropped.txt`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np

from config import get_settings
from data.cache import atomic_publish_dir, load_entry, params_hash, sweep_stale_temps
from data.prepare import PreparedData
from data.versions import subset_digest

CLEAN_SUFFIX = "+clean"
DROPPED_FILE = "dropped.txt"


def clean_version_name(data_version: str, digest: str) -> str:
    return f"{data_version}{CLEAN_SUFFIX}.{digest[:8]}"


def without_train_reviews(data: PreparedData, review_ids: Iterable[str]) -> PreparedData:
    """`data` with the given training reviews removed (everything else untouched).

    Every id must be a training review of `data`: an id from another split or data version would
    mean the flags were computed on something else.
    """
    ids = frozenset(map(str, review_ids))
    review_id = data.frame["review_id"].astype(str)
    train = (data.frame["split"] == "train").to_numpy()
    unknown = ids - set(review_id[train])
    if unknown:
        raise ValueError(
            f"{len(unknown)} review id(s) to drop are not training reviews of "
            f"{data.data_version}, e.g. {sorted(unknown)[:3]}"
        )
    keep = ~(train & review_id.isin(ids).to_numpy())
    digest = subset_digest(ids)
    return PreparedData(
        frame=data.frame.loc[keep].reset_index(drop=True),
        ids=np.asarray(data.ids[keep]),
        vocab=data.vocab,  # built before the removal: the test encoding stays identical
        max_len=data.max_len,
        dataset=data.dataset,
        data_hash=params_hash(data.data_hash, "clean", digest),
        data_version=clean_version_name(data.data_version, digest),
        dropped_label_issues=data.dropped_label_issues + len(ids),
    )


def drop_train_reviews(
    prepared_dir: str | Path, review_ids: Iterable[str], *, cache_dir: Path | None = None
) -> Path:
    """The prepared folder without the given training reviews, built once and cached.

    With no id to drop, `prepared_dir` itself. The folder is named by the source folder and the
    digest of the ids, and checked like the source (`PreparedData.load`, rows and ids) when found.
    """
    prepared_dir = Path(prepared_dir)
    ids = sorted(set(map(str, review_ids)))
    if not ids:
        return prepared_dir
    root = (cache_dir or get_settings().data_cache_dir) / "prepared"
    sweep_stale_temps(root)
    folder = root / f"{prepared_dir.name}{CLEAN_SUFFIX}-{subset_digest(frozenset(ids))}"
    if load_entry(folder, partial(_load_checked, ids=ids)) is not None:
        return folder
    cleaned = without_train_reviews(PreparedData.load(prepared_dir), ids)

    def build(tmp: Path) -> None:
        cleaned.save(tmp)
        (tmp / DROPPED_FILE).write_text("\n".join(ids) + "\n", encoding="utf-8")

    return atomic_publish_dir(build, folder)


def dropped_reviews(prepared_dir: str | Path) -> list[str]:
    """The training reviews removed from a cleaned folder (none for any other folder)."""
    path = Path(prepared_dir) / DROPPED_FILE
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _load_checked(folder: Path, ids: list[str]) -> PreparedData:
    """The cleaned data in `folder`, or a ValueError naming what does not match."""
    data = PreparedData.load(folder)
    if dropped_reviews(folder) != ids:
        raise ValueError(f"{DROPPED_FILE} does not list the reviews to drop")
    if data.ids.shape[0] != len(data.frame):
        raise ValueError(f"ids shape {data.ids.shape} for {len(data.frame)} reviews")
    if data.frame["review_id"].astype(str).isin(ids).any():
        raise ValueError("it still holds reviews it should not")
    return data
