"""Does the CNN's network read real reviews' context better than the n-gram branch? Out of fold.

Reads the held-out logits that `tune_networks --fold K 5 --dump` saved (the network's and the
branch's, one file per fold; every training review scored by a model that did not see it) and
scores the network alone, the branch alone and their sum (branch x2, as `tuned`) on the reviews
densest in negation words and in contrast words, where reading word order should pay. If the
network read context that a bag of 1-3 grams cannot, it would close its gap to the branch there.

    .venv/bin/python -m benchmarks.context_disagreement '/tmp/tune/dumps/cnn_r8_f*.npz'

Folds are rebuilt as `tune_networks.grouped_fold` builds them (five, grouped by movie, over the
training reviews, validation included) and checked against the dumped labels. The test split is
never read.
"""

from __future__ import annotations

import argparse
import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

from benchmarks.tune_networks import load_tokens
from models.presets import get_preset

# Words as `data.text.tokenize` leaves them: "didn't" -> "didn", "t" ("can't" and "won't" become
# "can" and "won", left out as ambiguous).
NEGATION = frozenset(
    ["not", "no", "never", "nothing", "nor", "neither", "hardly", "barely", "didn", "doesn",
     "don", "isn", "wasn", "aren", "weren", "couldn", "wouldn", "shouldn"]
)  # fmt: skip
CONTRAST = frozenset(["but", "although", "though", "however", "yet", "despite"])
BRANCH_WEIGHT = get_preset("cnn", "tuned").ngram_scale  # as the CNN adds it


@dataclass(frozen=True)
class GroupScore:
    group: str
    reviews: int
    network: float
    branch: float
    combined: float
    network_right_branch_wrong: float
    branch_right_network_wrong: float


def held_out(dumps: list[Path], cache: Path) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """The dumped logits, pooled over the folds, and each scored review's tokens, in one order."""
    data = load_tokens(cache)
    rows = np.flatnonzero(data["split"] != "test")
    folds = list(GroupKFold(len(dumps)).split(rows, groups=data["movie"][rows]))
    pooled: dict[str, list[np.ndarray]] = {"conv": [], "branch": [], "label": [], "row": []}
    for path, (_, held) in zip(dumps, folds, strict=True):
        dump = np.load(path)
        scored = np.sort(rows[held])  # the order `grouped_fold`'s "val" split keeps
        if not np.array_equal(data["label"][scored], dump["label"]):
            raise SystemExit(f"{path}: its labels do not match fold {len(pooled['row'])}")
        for key in ("conv", "branch", "label"):
            pooled[key].append(dump[key])
        pooled["row"].append(scored)
    logits = {key: np.concatenate(parts) for key, parts in pooled.items()}
    return logits, [data["tokens"][i] for i in logits["row"]]


def score(group: str, mask: np.ndarray, logits: dict[str, np.ndarray]) -> GroupScore:
    positive = logits["label"][mask] == 1

    def right(z: np.ndarray) -> np.ndarray:
        return (z[mask] > 0) == positive

    net, branch = right(logits["conv"]), right(logits["branch"])
    combined = right(logits["conv"] + BRANCH_WEIGHT * logits["branch"])
    return GroupScore(
        group,
        int(mask.sum()),
        float(net.mean()),
        float(branch.mean()),
        float(combined.mean()),
        float((net & ~branch).mean()),
        float((branch & ~net).mean()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", help="glob of the per-fold .npz dumps, in fold order")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tune"))
    args = parser.parse_args()
    dumps = [Path(p) for p in sorted(glob.glob(args.dumps))]
    if len(dumps) < 2:
        raise SystemExit(f"need the dumps of every fold, found {len(dumps)}")
    logits, tokens = held_out(dumps, args.cache)
    length = np.array([max(len(t), 1) for t in tokens])
    negation = np.array([sum(w in NEGATION for w in t) for t in tokens]) / length
    contrast = np.array([sum(w in CONTRAST for w in t) for t in tokens]) / length
    groups = {
        "all": np.ones(len(length), dtype=bool),
        "negation words per token, top quarter": negation >= np.quantile(negation, 0.75),
        "contrast words per token, top quarter": contrast >= np.quantile(contrast, 0.75),
        "no negation word": negation == 0,
    }
    print("| reviews | n | network | branch | network + 2 x branch | only the network right "
          "| only the branch right |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, mask in groups.items():
        s = score(name, mask, logits)
        print(f"| {s.group} | {s.reviews:,} | {s.network:.4f} | {s.branch:.4f} | {s.combined:.4f} "
              f"| {s.network_right_branch_wrong:.4f} | {s.branch_right_network_wrong:.4f} |")  # fmt: skip
    correlation = np.corrcoef(logits["conv"], logits["branch"])[0, 1]
    print(f"\ncorrelation of the two logits: {correlation:.3f}")


if __name__ == "__main__":
    main()
