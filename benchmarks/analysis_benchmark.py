"""Analysis benchmark: seconds per step of the error analysis of one model on the full test split.

    IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz .venv/bin/python -m benchmarks.analysis_benchmark --arch cnn

Trains the model first (tuned preset, against throw-away stores) unless --model-uri names a
logged one, then times: text metadata cold (TextBlob) and cached (the pipeline's parquet cache),
and each step of `analysis.errors.analyse.analyse_errors` (prediction, UMAP, clustering, plots, attributions).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="cnn", choices=("dense", "cnn"))
    parser.add_argument("--preset", default="tuned")
    parser.add_argument("--model-uri", default=None, help="a logged model (default: train one)")
    parser.add_argument("--limit", type=int, default=None, help="reviews per split")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="analysis-bench-")
    os.environ.setdefault("IMDB_SENTIMENT_CACHE_DIR", f"{root}/cache")
    if args.model_uri is None:
        os.environ.update(
            {
                "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
                "IMDB_SENTIMENT_ARTIFACT_ROOT": f"{root}/artifacts",
                "IMDB_SENTIMENT_OUTPUT_DIR": f"{root}/outputs",
            }
        )

    import mlflow
    import pandas as pd

    from analysis.errors.analyse import analyse_errors
    from analysis.errors.text_metadata import text_metadata
    from data.prepare import PreparedData, prepare_dataset
    from data.text import tokenize
    from models.presets import get_preset
    from models.train import train
    from tasks.data import compute_text_metadata

    preset = get_preset(args.arch, args.preset)
    prepared = prepare_dataset(
        "imdb", vocab_size=preset.vocab_size, max_len=preset.max_len, limit=args.limit
    )
    train_seconds = None
    uri = args.model_uri
    if uri is None:
        result = train(args.arch, prepared, preset=args.preset, register=False)
        uri, train_seconds = result.model_uri, result.train_seconds
    model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    data = PreparedData.load(prepared)
    samples, ids = data.split("test")

    start = time.perf_counter()
    text_metadata(samples["text"])
    metadata_cold = time.perf_counter() - start
    cache_path = compute_text_metadata.fn(str(prepared))  # writes the pipeline's cache file
    start = time.perf_counter()
    metadata = pd.read_parquet(compute_text_metadata.fn(str(prepared)))  # served from cache
    metadata_cached = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = analyse_errors(
            model.net,
            samples,
            ids,
            list(data.vocab.tokens),
            Path(out),
            metadata=metadata[["subjectivity", "polarity"]],
            tokenize=tokenize,
            model_name=args.arch,
        )
        total = time.perf_counter() - start

    print(f"\n{args.arch} ({args.preset}), {len(samples):,} test reviews; cache {cache_path}")
    print(f"{'step':<24} {'seconds':>8}")
    print(f"{'metadata (cold)':<24} {metadata_cold:>8.1f}")
    print(f"{'metadata (cached)':<24} {metadata_cached:>8.2f}")
    for step, seconds in result.timings.items():
        print(f"{step:<24} {seconds:>8.1f}")
    print(f"{'analyse_errors() total':<24} {total:>8.1f}")
    if train_seconds is not None:
        print(f"{'training (fit)':<24} {train_seconds:>8.1f}")
        print(
            f"analysis (cold metadata + analyse) / training: {(metadata_cold + total) / train_seconds:.2f}"
        )


if __name__ == "__main__":
    main()
