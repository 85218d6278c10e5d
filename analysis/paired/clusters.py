"""Champion k-means clusters matched to a new model's clusters by the reviews they share.

k-means numbers its clusters arbitrarily on every run, so "cluster 3" of the champion and "cluster
3" of the new model are unrelated; the regression check needs to know which new cluster is the
same group of reviews before it can say a group got worse.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy.optimize import linear_sum_assignment

from analysis.paired.pairing import pair_with_champion

CLUSTER_MATCH_COLUMNS = ("new_cluster", "old_cluster", "jaccard", "new_size", "old_size", "overlap")


def match_paired_clusters(joined: pd.DataFrame) -> pd.DataFrame:
    """`match_clusters` on a `pair_with_champion` table (columns cluster_old, cluster_new)."""
    overlap = pd.crosstab(joined["cluster_new"], joined["cluster_old"])
    new_ids, old_ids = overlap.index.to_numpy(), overlap.columns.to_numpy()
    inter = overlap.to_numpy(dtype=float)
    new_size, old_size = inter.sum(axis=1), inter.sum(axis=0)
    jaccard = inter / (new_size[:, None] + old_size[None, :] - inter)
    rows_i, cols_j = linear_sum_assignment(jaccard, maximize=True)
    rows: list[dict[str, Any]] = []
    matched_new, matched_old = set(), set()
    for i, j in zip(rows_i, cols_j, strict=True):
        if inter[i, j] == 0:
            continue
        matched_new.add(i)
        matched_old.add(j)
        rows.append(
            {
                "new_cluster": new_ids[i],
                "old_cluster": old_ids[j],
                "jaccard": float(jaccard[i, j]),
                "new_size": int(new_size[i]),
                "old_size": int(old_size[j]),
                "overlap": int(inter[i, j]),
            }
        )
    for i in set(range(len(new_ids))) - matched_new:
        rows.append(
            {"new_cluster": new_ids[i], "old_cluster": pd.NA, "jaccard": 0.0}
            | {"new_size": int(new_size[i]), "old_size": 0, "overlap": 0}
        )
    out = pd.DataFrame(rows, columns=list(CLUSTER_MATCH_COLUMNS))
    out = out.sort_values("new_cluster", kind="stable")
    tail = [
        {"new_cluster": pd.NA, "old_cluster": old_ids[j], "jaccard": 0.0}
        | {"new_size": 0, "old_size": int(old_size[j]), "overlap": 0}
        for j in sorted(set(range(len(old_ids))) - matched_old)
    ]
    if tail:
        out = pd.concat([out, pd.DataFrame(tail, columns=list(CLUSTER_MATCH_COLUMNS))])
    out["new_cluster"] = out["new_cluster"].astype("Int64")
    out["old_cluster"] = out["old_cluster"].astype("Int64")
    return out.reset_index(drop=True)


def match_clusters(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """New clusters matched one-to-one to champion clusters by Jaccard overlap of review ids.

    k-means ids are arbitrary per run, so the ids themselves say nothing; the Hungarian assignment
    maximises the total Jaccard. Rows: one per matched pair, then unmatched new clusters and
    unmatched champion clusters (the other id <NA>, jaccard 0). A pair with no common review is
    not a match. Sorted by new cluster id, unmatched champion clusters last.
    """
    return match_paired_clusters(pair_with_champion(new, old, ("cluster",)))
