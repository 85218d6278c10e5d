"""Errors per movie: does the model fail on reviews of particular films?

IMDB has up to 30 reviews per movie, and the test movies are not in train. When errors pile up on
a few movies, the cause is usually the film, not the review: a horror film praised for its gore,
a comedy called "so bad it's good", a documentary whose reviewers argue about its subject.
"""

from __future__ import annotations

import pandas as pd

from analysis.common.render import fmt_number, fmt_pct, markdown_table

MOVIE_COLUMNS = ("movie", "reviews", "errors", "error_rate", "mean_loss", "positive_share")
MIN_REVIEWS = 10  # fewer reviews make an error rate too noisy to rank by
IMDB_TITLE_URL = "https://www.imdb.com/title/{}/"


def movie_errors(
    table: pd.DataFrame, movie: pd.Series | None, min_reviews: int = MIN_REVIEWS
) -> pd.DataFrame:
    """Per movie with at least `min_reviews` reviews: reviews, errors, error rate, mean loss and
    share of positive reviews, the highest error rate first (ties: higher mean loss first).

    `table` needs `label`, `pred` and `loss`; `movie` is aligned with it (None where unknown, or
    None altogether when the data has no movies).
    """
    known = movie.notna().to_numpy() if movie is not None else None
    if known is None or not known.any():
        return pd.DataFrame(columns=list(MOVIE_COLUMNS))
    rows = table.loc[known, ["label", "pred", "loss"]].assign(movie=movie[known].to_numpy())
    rows["error"] = (rows["label"] != rows["pred"]).astype(int)
    grouped = rows.groupby("movie").agg(
        reviews=("error", "size"),
        errors=("error", "sum"),
        error_rate=("error", "mean"),
        mean_loss=("loss", "mean"),
        positive_share=("label", "mean"),
    )
    grouped = grouped[grouped["reviews"] >= min_reviews].reset_index()
    ordered = grouped.sort_values(
        ["error_rate", "mean_loss", "movie"], ascending=[False, False, True], kind="stable"
    )
    return ordered[list(MOVIE_COLUMNS)].reset_index(drop=True)


def movies_markdown(movies: pd.DataFrame, top: int = 5) -> str:
    """A section naming the movies whose reviews the model gets wrong most, from `movie_errors`."""
    lines = ["", "## Movies whose reviews it gets wrong most", ""]
    if movies.empty:
        return "\n".join([*lines, f"No movie with {MIN_REVIEWS}+ reviews in the data.", ""])
    # How concentrated the errors are: the worst tenth of the movies against its share of reviews.
    worst = movies.head(max(1, len(movies) // 10))
    lines += [
        f"Over the {len(movies):,} movies with at least {MIN_REVIEWS} reviews, the worst "
        f"{len(worst):,} hold {worst['errors'].sum() / max(1, movies['errors'].sum()):.0%} of the "
        f"errors and {worst['reviews'].sum() / movies['reviews'].sum():.0%} of the reviews. "
        "Full table: `movies.csv`.",
        "",
    ]
    shown = movies.head(top)
    table = pd.DataFrame(
        {
            "movie": [f"[{m}]({IMDB_TITLE_URL.format(m)})" for m in shown["movie"].astype(str)],
            "reviews": shown["reviews"].astype(int),
            "error rate": [fmt_pct(v) for v in shown["error_rate"]],
            "mean loss": [fmt_number(v, 2) for v in shown["mean_loss"]],
            "positive reviews": [fmt_pct(v) for v in shown["positive_share"]],
        }
    )
    lines.append(markdown_table(table, right=list(table.columns[1:])))
    return "\n".join([*lines, ""])
