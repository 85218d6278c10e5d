"""Errors per movie on hand-made tables whose answers are known."""

from __future__ import annotations

import pandas as pd

from analysis.errors.movies import MOVIE_COLUMNS, movie_errors, movies_markdown


def scored(movies: list[str | None], wrong: list[bool], loss: list[float]) -> pd.DataFrame:
    label = [i % 2 for i in range(len(movies))]
    pred = [1 - y if w else y for y, w in zip(label, wrong, strict=True)]
    return pd.DataFrame({"label": label, "pred": pred, "loss": loss, "movie": movies})


def test_error_rates_per_movie_worst_first_small_movies_left_out() -> None:
    movies = ["tt1"] * 4 + ["tt2"] * 4 + ["tt3"] * 4 + ["tt4"] * 2 + [None] * 3
    wrong = [True, False, False, False] + [True, True, False, False] + [True, False, False, False]
    wrong += [True, True] + [True, True, True]
    loss = [2.0, 0.1, 0.1, 0.1] + [1.0, 1.0, 0.2, 0.2] + [1.0, 0.2, 0.2, 0.2] + [3.0, 3.0]
    loss += [5.0, 5.0, 5.0]
    table = scored(movies, wrong, loss)
    result = movie_errors(table.drop(columns="movie"), table["movie"], min_reviews=3)
    assert tuple(result.columns) == MOVIE_COLUMNS
    # tt4 (2 reviews) and the unknown movies are left out; tt1 and tt3 tie on error rate and
    # tt1's higher mean loss puts it first.
    assert result["movie"].tolist() == ["tt2", "tt1", "tt3"]
    assert result["errors"].tolist() == [2, 1, 1]
    assert result["error_rate"].tolist() == [0.5, 0.25, 0.25]
    assert result["mean_loss"].round(6).tolist() == [0.6, 0.575, 0.4]
    assert result["positive_share"].tolist() == [0.5, 0.5, 0.5]


def test_markdown_names_the_worst_movies_and_how_concentrated_errors_are() -> None:
    movies = [f"tt{i // 10:07d}" for i in range(200)]  # 20 movies of 10 reviews
    wrong = [i < 10 or i % 10 == 0 for i in range(200)]  # movie 0 all wrong, the rest 1 in 10
    table = scored(movies, wrong, [1.0 if w else 0.1 for w in wrong])
    text = movies_markdown(movie_errors(table, table["movie"]), top=3)
    assert "## Movies whose reviews it gets wrong most" in text
    # The worst tenth (2 movies: 10 + 1 errors) holds 11 of the 29 errors and 20 of 200 reviews.
    assert "the worst 2 hold 38% of the errors and 10% of the reviews" in text
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert len(rows) == 3
    assert (
        rows[0] == "| [tt0000000](https://www.imdb.com/title/tt0000000/) | 10 | 100% | 1.00 | 50% |"
    )


def test_no_known_movie_gives_an_empty_table_and_says_so() -> None:
    table = scored([None] * 4, [True, False, False, False], [1.0, 0.1, 0.1, 0.1])
    result = movie_errors(table, table["movie"])
    assert result.empty and tuple(result.columns) == MOVIE_COLUMNS
    assert "No movie with 10+ reviews" in movies_markdown(result)
