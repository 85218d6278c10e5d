"""Data preparation: load a dataset, carve a validation split, build the vocabulary, encode.

The prepared data is written once per (source content, parameters) under the cache and passed
around by path. This on-disk cache is the only one: each call checks that the entry it finds is
complete and matches its parameters, and rebuilds it otherwise.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from config import check_choice, get_settings
from data.cache import atomic_publish_dir, load_entry, params_hash, sweep_stale_temps
from data.imdb import load_imdb, resolve_source, sort_reviews, source_sha256
from data.synthetic import synthetic_reviews
from data.text import Vocabulary, encode_texts, tokenize
from data.versions import DataVersion, intake_reviews, keep_train_subset

log = logging.getLogger(__name__)

DatasetName = Literal["imdb", "synthetic"]
DATASETS: tuple[DatasetName, ...] = get_args(DatasetName)
SYNTHETIC_SIZE = 4_000
# Bump when preparation logic changes, so cached prepared data is rebuilt.
_PREPARE_VERSION = "2"  # 2: validation grouped by movie
_FRAME_COLUMNS = {"review_id", "split", "text", "label", "length", "oov_count"}


@dataclass(frozen=True)
class PreparedData:
    """Everything training and analysis need: the table, the encoded ids and the vocabulary.

    `frame` has review_id, split (train/val/test), text, label, rating, movie, length,
    oov_count; row i of `ids` encodes row i of `frame`.
    """

    frame: pd.DataFrame
    ids: np.ndarray
    vocab: Vocabulary
    max_len: int
    dataset: DatasetName
    data_hash: str  # hash of the source content and every preparation parameter
    data_version: str = ""  # `data.versions.DataVersion.name`: what the model is trained on
    dropped_label_issues: int = 0  # training reviews removed as likely mislabelled (data.clean)

    def split(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        mask = (self.frame["split"] == name).to_numpy()
        return self.frame[mask].reset_index(drop=True), self.ids[mask]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.frame.to_parquet(folder / "frame.parquet", index=False)
        np.save(folder / "ids.npy", self.ids)
        (folder / "vocab.json").write_text(self.vocab.to_json(), encoding="utf-8")
        meta = {
            "max_len": self.max_len,
            "dataset": self.dataset,
            "data_hash": self.data_hash,
            "data_version": self.data_version,
            "dropped_label_issues": self.dropped_label_issues,
        }
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> PreparedData:
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return cls(
            frame=pd.read_parquet(folder / "frame.parquet"),
            # Memory-mapped: several tasks load the same data; each copies only the split it uses.
            ids=np.load(folder / "ids.npy", mmap_mode="r"),
            vocab=Vocabulary.load(folder / "vocab.json"),
            max_len=int(meta["max_len"]),
            dataset=meta["dataset"],
            data_hash=meta["data_hash"],
            data_version=meta.get("data_version") or meta["dataset"],
            dropped_label_issues=int(meta.get("dropped_label_issues", 0)),
        )


def hash_source(
    dataset: DatasetName = "imdb", data_path: str | Path | None = None, seed: int = 42
) -> str:
    """The content hash of a dataset's source, without parsing it (downloads IMDB if needed)."""
    if check_choice(dataset, DatasetName, "dataset") == "imdb":
        return source_sha256(resolve_source(data_path))
    return params_hash("synthetic", SYNTHETIC_SIZE, seed)


def load_reviews(
    dataset: DatasetName = "imdb",
    data_path: str | Path | None = None,
    seed: int = 42,
    *,
    known_hash: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """The raw review table of a dataset and the content hash of its source (`known_hash`: that
    hash, when the caller has just computed it)."""
    if check_choice(dataset, DatasetName, "dataset") == "imdb":
        return load_imdb(data_path, source_hash=known_hash)
    frame = synthetic_reviews(SYNTHETIC_SIZE, seed=seed)
    return frame, params_hash("synthetic", SYNTHETIC_SIZE, seed)


def limit_reviews(frame: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most `limit` reviews per split, class-balanced, for quick runs."""
    if limit is None:
        return frame
    if limit < 4:
        raise ValueError(f"limit must be at least 4 reviews per split, got {limit}")
    parts = [
        group.sample(n=min(len(group), limit // 2), random_state=seed)
        for _, group in frame.groupby(["split", "label"])
    ]
    return sort_reviews(pd.concat(parts))


def movie_groups(frame: pd.DataFrame) -> pd.Series:
    """Each review's movie, or `review:<id>` for a review without a known movie (a movie of its
    own): the groups that keep a movie's reviews on one side of a split."""
    movie = frame.get("movie", pd.Series(None, index=frame.index))
    return movie.astype("object").where(movie.notna(), "review:" + frame["review_id"].astype(str))


def assign_validation(frame: pd.DataFrame, val_fraction: float, seed: int) -> pd.DataFrame:
    """Carve a seeded validation split from train, grouped by movie and stratified by label.

    The official test reviews are about other movies than the training reviews; a validation split
    that shared movies with training would reward memorised titles and actor names, and read
    0.010-0.025 above test accuracy. So every movie's reviews go to one side: movies are visited in
    a seeded order and a movie joins validation while it fits within each class's quota
    (`val_fraction` of that class's training reviews). Reviews without a known movie count as a
    movie of their own. Test stays the official test set.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train = frame.loc[frame["split"] == "train"]
    groups = movie_groups(train)
    per_group = pd.crosstab(groups, train["label"]).reindex(columns=[0, 1], fill_value=0)
    per_group = per_group.sample(frac=1.0, random_state=seed)  # the seeded visiting order
    quota = per_group.sum().to_numpy() * val_fraction
    taken = np.zeros(2)
    chosen = []
    for group, counts in zip(per_group.index, per_group.to_numpy(), strict=True):
        if (taken + counts <= quota + 1e-9).all():
            taken += counts
            chosen.append(group)
    frame = frame.copy()
    frame.loc[train.index[groups.isin(chosen).to_numpy()], "split"] = "val"
    return frame


def prepare(
    frame: pd.DataFrame,
    source_hash: str,
    *,
    dataset: DatasetName,
    vocab_size: int = 10_000,
    max_len: int = 250,
    val_fraction: float = 0.1,
    seed: int = 42,
    data_version: str = "",
) -> PreparedData:
    """Split, build the vocabulary on the training split only, and encode every review."""
    frame = assign_validation(frame.reset_index(drop=True), val_fraction, seed)
    train_texts = frame.loc[frame["split"] == "train", "text"]
    vocab = Vocabulary.build((tokenize(t) for t in train_texts), vocab_size)
    encoded = encode_texts(frame["text"], vocab, max_len)
    frame = frame.assign(length=encoded.lengths, oov_count=encoded.oov_counts)
    data_hash = params_hash(source_hash, len(frame), vocab_size, max_len, val_fraction, seed)
    return PreparedData(
        frame, encoded.ids, vocab, max_len, dataset, data_hash, data_version or dataset
    )


def prepare_dataset(
    dataset: DatasetName = "imdb",
    data_path: str | Path | None = None,
    *,
    vocab_size: int = 10_000,
    max_len: int = 250,
    val_fraction: float = 0.1,
    limit: int | None = None,
    seed: int = 42,
    cache_dir: Path | None = None,
    version: DataVersion | None = None,
    intake_store: str | Path | None = None,
) -> Path:
    """Prepare a dataset once and return the folder holding it (see `PreparedData.load`).

    The folder is named by the source's content hash and every parameter, so a second call with
    the same inputs returns at once (after checking the folder is whole, see `_load_checked`), and
    concurrent runs never see a half-written folder. A damaged folder is removed and rebuilt.
    """
    digest = hash_source(dataset, data_path, seed)
    if version is None:
        version = DataVersion(dataset, digest)
    elif (version.dataset, version.source_hash) != (dataset, digest):
        raise ValueError(f"data version {version.name} is not of this {dataset} source ({digest})")
    # The source alone keeps its old key; any other version is keyed by its digest.
    content = digest if version.is_source_alone else version.digest
    key = params_hash(
        _PREPARE_VERSION, dataset, content, vocab_size, max_len, val_fraction, limit, seed
    )
    root = (cache_dir or get_settings().data_cache_dir) / "prepared"
    sweep_stale_temps(root)  # what a run killed while publishing left behind
    folder = root / f"{dataset}-{key}"
    check = partial(
        _load_checked,
        expected=(dataset, content, vocab_size, max_len, val_fraction, seed),
    )
    if load_entry(folder, check) is not None:
        log.info("Using prepared data %s", folder)
        return folder
    frame, _ = load_reviews(dataset, data_path, seed, known_hash=digest)
    frame = limit_reviews(keep_train_subset(frame, version), limit, seed)
    new_reviews = intake_reviews(version, intake_store)
    if len(new_reviews):
        frame = pd.concat([frame, new_reviews], ignore_index=True)  # store order: deterministic
    log.info(
        "Preparing %s: %d reviews, vocabulary %d, length %d",
        dataset,
        len(frame),
        vocab_size,
        max_len,
    )
    prepared = prepare(
        frame,
        content,
        dataset=dataset,
        data_version=version.name,
        vocab_size=vocab_size,
        max_len=max_len,
        val_fraction=val_fraction,
        seed=seed,
    )
    return atomic_publish_dir(prepared.save, folder)


def _load_checked(
    folder: Path, expected: tuple[DatasetName, str, int, int, float, int]
) -> PreparedData:
    """The prepared data in `folder`, or a ValueError naming what does not match (a file that is
    missing or truncated fails in `PreparedData.load` itself)."""
    dataset, digest, vocab_size, max_len, val_fraction, seed = expected
    data = PreparedData.load(folder)
    rows = len(data.frame)
    problems = [
        f"{what} is {got!r}, expected {want!r}"
        for what, got, want in (
            ("dataset", data.dataset, dataset),
            (
                "data_hash",
                data.data_hash,
                params_hash(digest, rows, vocab_size, max_len, val_fraction, seed),
            ),
            ("ids shape", tuple(data.ids.shape), (rows, max_len)),
            ("missing columns", sorted(_FRAME_COLUMNS - set(data.frame.columns)), []),
        )
        if got != want
    ]
    if len(data.vocab) > vocab_size:
        problems.append(f"vocabulary of {len(data.vocab)} tokens, over {vocab_size}")
    if problems:
        raise ValueError("; ".join(problems))
    return data
