"""`python -m analysis.explain`: explain free text with logged models, one or two side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.explain import main


def test_explains_text_under_both_models_side_by_side(trained, tmp_path: Path, capsys) -> None:
    out = tmp_path / "explained.html"
    uris = [
        f"models:/imdb-sentiment-{arch}/{trained[arch].registered_version}"
        for arch in ("dense", "cnn")
    ]
    texts = ["the cast was not brilliant", ""]
    path = main(["--model", uris[0], "--model", uris[1], "--out", str(out), "--top", "3", *texts])

    printed = capsys.readouterr().out
    assert path == out and out.exists()
    page = out.read_text(encoding="utf-8")
    for word in ("cast", "brilliant", "imdb-sentiment-dense", "imdb-sentiment-cnn"):
        assert word in page
    assert "NaN" not in page
    assert printed.count("P(positive) =") == 4  # two texts x two models
    assert "brilliant" in printed and "empty after standardisation" in printed


def test_more_than_two_models_is_refused(trained) -> None:
    uri = f"models:/imdb-sentiment-cnn/{trained['cnn'].registered_version}"
    with pytest.raises(SystemExit):
        main(["--model", uri, "--model", uri, "--model", uri, "some text"])
