from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors.population import plot_population, population_html, reduce_2d, select_points
from config import get_settings


def table_of(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    prob = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "review_id": [f"id{i}" for i in range(n)],
            "label": label,
            "pred": (prob >= 0.5).astype(int),
            "prob_positive": prob,
            "loss": -np.log(np.where(label == 1, prob, 1 - prob)),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


@pytest.mark.parametrize("n", [0, 1, 2, 5, 9])
def test_reduce_2d_small_inputs_fall_back_to_pca(n: int, caplog: pytest.LogCaptureFixture) -> None:
    latent = np.random.default_rng(0).normal(size=(n, 6))
    with caplog.at_level(logging.WARNING):
        xy = reduce_2d(latent)
    assert xy.shape == (n, 2)
    assert np.isfinite(xy).all()
    assert "too few for UMAP" in caplog.text
    if n >= 3:
        assert xy[:, 0].std() > 0  # the points are spread, not piled up


def test_select_points_caps_loudly_and_keeps_the_worst() -> None:
    table = table_of(1000)
    rows, caption = select_points(table, 100)
    assert len(rows) == 100 and len(set(rows)) == 100
    worst = np.argsort(-table["loss"].to_numpy())[:50]
    assert set(worst) <= set(rows)
    assert "100 of 1,000" in caption and "50 highest-loss" in caption
    assert np.array_equal(rows, select_points(table, 100)[0])  # deterministic
    all_rows, all_caption = select_points(table, 5000)
    assert len(all_rows) == 1000 and all_caption == "all 1,000 reviews"


def test_population_png_and_self_contained_html(tmp_path: Path) -> None:
    table = table_of(300)
    texts = pd.Series([f"Review <br /> number {i} & " + "word " * 80 for i in range(300)])
    png = plot_population(table, tmp_path / "p.png", max_points=120)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
    page = population_html(table, texts, tmp_path / "p.html", max_points=120).read_text()
    assert "<script src=" not in page  # plotly.js is inlined: works offline
    assert "120 of 300" in page
    worst = int(table["loss"].idxmax())
    # the highest-loss review is always drawn and its opening is in the hover, tags stripped
    assert f'"id{worst}"' in page
    assert f"Review number {worst} &amp; word" in page and "<br /> number" not in page


def test_umap_numba_functions_are_cached_under_the_project_cache() -> None:
    """umap-learn's own jitted functions (no `cache=True` of theirs) get a disk cache in the
    settings' cache folder, so a new process loads compiled code instead of recompiling.

    The session's cache folder, shared with the suite's other processes: only the first to
    import umap-learn compiles (about 20 s here)."""
    script = (
        "from analysis.errors.population import import_umap\n"
        "umap = import_umap()\n"
        "import numba, umap.layouts as layouts, pynndescent.utils as nnd\n"
        "for fn in (layouts._nb_optimize_layout_euclidean_single_epoch, nnd.make_heap):\n"
        "    print(type(fn._cache).__name__, fn._cache._cache_path)\n"
        "print('njit restored', numba.njit.__module__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    folder = get_settings().cache_dir / "numba"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for line in out[:2]:
        kind, path = line.split(" ", 1)
        assert kind == "FunctionCache"  # numba's NullCache when not cached
        assert Path(path).is_relative_to(folder)
    assert out[2] == "njit restored numba.core.decorators"  # the default is patched only meanwhile
