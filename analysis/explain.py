"""Explain any text with a logged model: a per-word heat-map page and the top words on the terminal.

    python -m analysis.explain --model models:/imdb-sentiment-cnn/1 "mildly entertaining, sadly"
    python -m analysis.explain --model models:/imdb-sentiment-dense/1 --model models:/imdb-sentiment-cnn/1 "..."

With two `--model`s the page puts the two explanations of each text side by side. A `models:/` or
`runs:/` URI is read from the tracking store of the settings (MLFLOW_TRACKING_URI), checked first:
an unreachable server or an unusable store exits at once with one line, not after minutes of
MLflow's retries.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from analysis.common.artifacts import logged_model
from analysis.common.schema import per_sample_loss
from analysis.errors.attributions import DEFAULT_N_STEPS, TokenView, explain_reviews
from analysis.errors.heatmap import ReviewHeatmap, side_by_side, write_heatmap_page
from analysis.errors.predict import predict
from data.text import tokenize
from models.tracking import TrackingUnavailableError, configure_tracking

STORE_SCHEMES = ("models:/", "runs:/")  # URIs resolved through the tracking store


def explain_texts(
    model, texts: Sequence[str], model_name: str = "model", n_steps: int = DEFAULT_N_STEPS
) -> list[TokenView]:
    """Integrated-Gradients explanations of raw texts under one model, both classes.

    There is no true label for free text: the loss shown is that of the model's own prediction.
    """
    ids = model.encode(list(texts))
    prob, _, _ = predict(model.net, ids, progress=False)
    loss = per_sample_loss(prob, (prob > 0.5).astype(int))
    lengths = np.array([len(tokenize(t)) for t in texts])
    return explain_reviews(
        model.net,
        ids,
        prob,
        loss,
        lengths,
        list(model.vocab.tokens),
        model_name=model_name,
        texts=list(texts),
        tokenize=tokenize,
        n_steps=n_steps,
        progress=False,
    )


def top_words(view: TokenView, k: int = 8) -> list[tuple[str, float]]:
    """The k words with the largest |score| toward the positive class (negative = pushes negative)."""
    order = np.argsort(-np.abs(view.scores_pos))[:k]
    return [(view.tokens[i], float(view.scores_pos[i])) for i in order]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.explain", description=__doc__.splitlines()[0]
    )
    parser.add_argument("texts", nargs="+", help="review text(s) to explain")
    parser.add_argument(
        "--model", action="append", required=True, help="MLflow model URI (repeat for two models)"
    )
    parser.add_argument("--out", type=Path, default=Path("explanation.html"), help="HTML page")
    parser.add_argument("--n-steps", type=int, default=DEFAULT_N_STEPS, help="IG steps")
    parser.add_argument("--top", type=int, default=8, help="words printed per text")
    args = parser.parse_args(argv)
    if len(args.model) > 2:
        parser.error("at most two --model URIs (they are shown side by side)")
    if any(uri.startswith(STORE_SCHEMES) for uri in args.model):
        try:  # before MLflow's retries against a server that is down (minutes)
            configure_tracking()
        except TrackingUnavailableError as error:
            parser.exit(1, f"error: {error}\n")

    per_model = []
    for uri in args.model:
        name = uri.rstrip("/").split("/")[-2] if uri.startswith("models:/") else uri
        per_model.append(explain_texts(logged_model(uri), args.texts, name, args.n_steps))

    for i, text in enumerate(args.texts):
        print(f"\n{text[:100]!r}")
        for views in per_model:
            view = views[i]
            verdict = "positive" if view.prob_positive > 0.5 else "negative"
            print(f"  {view.model_name}: {verdict} (P(positive) = {view.prob_positive:.3f})")
            if not view.tokens:
                print("    (no words: the text is empty after standardisation)")
            for word, score in top_words(view, args.top):
                print(f"    {word:<20} {score:+.4f}")
    labels = [int(v.prob_positive > 0.5) for v in per_model[0]]  # no ground truth: the prediction
    ids = [f"text {i + 1}" for i in range(len(args.texts))]
    rows: list[ReviewHeatmap] = side_by_side(ids, labels, *per_model)
    path = write_heatmap_page(rows, args.out, title="Word attributions for your text")
    print(f"\nheat-map page: {path.resolve()}")
    return path


if __name__ == "__main__":
    main()
