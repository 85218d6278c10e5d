"""Simulated arrivals of new labelled reviews, for exercising intake and retraining offline.

`weekly_batches` splits a labelled corpus by movie: a baseline keeps part of the training movies
(what the first model is trained on), the rest arrive as weekly CSV files. `drift_batch` writes
a batch that does not look like the training data: new slang, a different mix of lengths, a
shifted label balance. Files are written under a temporary name and renamed, so an inbox being
drained never sees half a file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from data.cache import atomic_write_text
from data.synthetic import NOUNS, synthetic_reviews

SIM_START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday; week k is collected k weeks later
SLANG_POSITIVE = ("slaps", "is bussin", "is goated", "is peak cinema", "is lowkey fire", "ate")
SLANG_NEGATIVE = ("is mid", "is cringe", "flopped", "took an l", "is giving nothing", "is npc")
_BATCH_COLUMNS = ["text", "label", "rating", "movie", "source", "collected_at"]


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return atomic_write_text(path, frame[_BATCH_COLUMNS].to_csv(index=False))


def _spell(labels: pd.Series) -> pd.Series:
    return labels.map({1: "positive", 0: "negative"})


def weekly_batches(
    reviews: pd.DataFrame,
    out: str | Path,
    *,
    weeks: int = 3,
    baseline_fraction: float = 0.5,
    seed: int = 42,
) -> dict:
    """Write `week-01.csv` ... and `manifest.json` (the baseline's movies and review ids, each
    file's rows) to `out`; returns the manifest. `reviews` is a review table (`data.imdb.COLUMNS`);
    only its training reviews are used (test reviews would be refused as leakage)."""
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    if not 0 <= baseline_fraction < 1:
        raise ValueError(f"baseline_fraction must be in [0, 1), got {baseline_fraction}")
    train = reviews.loc[reviews["split"] == "train"].reset_index(drop=True)
    # Reviews of an unknown movie count as a movie of their own (as in data.prepare).
    groups = (
        train["movie"].astype(object).where(train["movie"].notna(), "review:" + train["review_id"])
    )
    groups = groups.astype(str)
    order = np.random.default_rng(seed).permutation(sorted(groups.unique()))
    cut = round(len(order) * baseline_fraction)
    baseline = set(order[:cut])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for week, chunk in enumerate(np.array_split(order[cut:], weeks), start=1):
        rows = train.loc[groups.isin(set(chunk))]
        batch = pd.DataFrame(
            {
                "text": rows["text"],
                "label": _spell(rows["label"]),
                "rating": rows["rating"].astype("Int64"),
                "movie": rows["movie"],
                "source": f"simulated-week-{week:02d}",
                "collected_at": (SIM_START + pd.Timedelta(weeks=week)).isoformat(),
            }
        )
        name = f"week-{week:02d}.csv"
        _write_csv(out / name, batch)
        files[name] = {
            "rows": len(batch),
            "movies": len(chunk),
            "positive_share": round(float(rows["label"].mean()), 4) if len(rows) else None,
        }
    in_baseline = groups.isin(baseline)
    manifest = {
        "seed": seed,
        "weeks": weeks,
        "baseline_fraction": baseline_fraction,
        "baseline_movies": sorted(baseline),
        "baseline_review_ids": train.loc[in_baseline, "review_id"].astype(str).tolist(),
        "baseline_rows": int(in_baseline.sum()),
        "files": files,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


def drift_batch(n: int = 400, *, seed: int = 7, positive_share: float = 0.75) -> pd.DataFrame:
    """`n` synthetic reviews unlike the training data: slang the vocabulary has never seen, most
    reviews one or two sentences long (a few very long), and `positive_share` positive."""
    if n < 2:
        raise ValueError(f"a drifted batch needs at least 2 reviews, got {n}")
    if not 0 < positive_share < 1:
        raise ValueError(f"positive_share must be in (0, 1), got {positive_share}")
    pool = synthetic_reviews(max(4 * n, 40), seed=10_000 + seed)
    rng = np.random.default_rng([seed, 2])
    n_pos = round(n * positive_share)
    picked = pd.concat(
        [
            pool.loc[pool["label"] == 1].sample(n_pos, random_state=seed),
            pool.loc[pool["label"] == 0].sample(n - n_pos, random_state=seed),
        ]
    ).sample(frac=1.0, random_state=seed)
    texts = []
    for text, label in zip(picked["text"], picked["label"], strict=True):
        sentences = [s for s in text.rstrip(".").split(". ") if s]
        keep = len(sentences) if rng.random() < 0.15 else int(rng.integers(1, 3))
        slang = SLANG_POSITIVE if label == 1 else SLANG_NEGATIVE
        extra = [
            f"honestly the {rng.choice(NOUNS)} {rng.choice(slang)}"
            for _ in range(int(rng.integers(1, 4)))
        ]
        texts.append(". ".join([*sentences[:keep], *extra]).capitalize() + ".")
    return pd.DataFrame(
        {
            "text": texts,
            "label": _spell(picked["label"]).to_numpy(),
            "rating": picked["rating"].to_numpy(),
            "movie": [f"drift-movie-{int(i)}" for i in rng.integers(max(1, n // 5), size=n)],
            "source": "simulated-drift",
            "collected_at": SIM_START.isoformat(),
        }
    )


def simulate_command(args: argparse.Namespace) -> int:
    """`python -m data.intake simulate` (see data.intake)."""
    if args.drift:
        frame = drift_batch(args.rows, seed=args.seed)
        path = _write_csv(Path(args.out) / f"drift-{args.seed}.csv", frame)
        words = frame["text"].str.split().str.len()
        print(
            f"{path}: {len(frame)} drifted reviews, "
            f"{(frame['label'] == 'positive').mean():.0%} positive, median {words.median():.0f} words"
        )
        return 0
    from data.prepare import load_reviews  # parses IMDB only when asked

    reviews, _ = load_reviews(args.dataset, args.data_path, args.seed)
    manifest = weekly_batches(
        reviews,
        args.out,
        weeks=args.weeks,
        baseline_fraction=args.baseline_fraction,
        seed=args.seed,
    )
    print(
        f"{args.out}: baseline {manifest['baseline_rows']} reviews of "
        f"{len(manifest['baseline_movies'])} movies (manifest.json)"
    )
    for name, info in manifest["files"].items():
        print(f"  {name}: {info['rows']} reviews of {info['movies']} movies")
    return 0
