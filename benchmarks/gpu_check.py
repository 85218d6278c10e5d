"""Check that training runs on a CUDA GPU: both architectures, the logged model scored on CPU.

    .venv/bin/python benchmarks/gpu_check.py                 # both archs, the synthetic corpus
    .venv/bin/python benchmarks/gpu_check.py --size 50000    # a corpus of IMDB's size, timed

For each architecture `python -m models.train` runs in-process with `--accelerator gpu` (and, on
the default corpus, once with `auto`, which must pick the GPU too); the check fails unless CUDA
memory was allocated during the fit. The model it logged is then loaded and scored on raw text in
a child process that sees no GPU, as a user on a CPU-only machine would. Tracking and caches go to
a temporary folder; nothing is registered. Exit status 0 when every check holds; the figures are
printed as one JSON line per training.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Scores two raw reviews with the logged model; run with no GPU visible.
SCORE_ON_CPU = """
import sys, mlflow, pandas as pd, torch
assert not torch.cuda.is_available()
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame({"review": ["a brilliant, moving film", "dull and tedious"]}))
print(out.to_json(orient="records"))
"""


def train_on(arch: str, accelerator: str, preset: str) -> dict[str, object]:
    from models.cli import main

    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = main(
        ["--arch", arch, "--dataset", "synthetic", "--preset", preset]
        + ["--accelerator", accelerator, "--devices", "1", "--no-register"]
    )
    peak = torch.cuda.max_memory_allocated()
    if peak == 0:
        raise SystemExit(f"{arch} with accelerator {accelerator}: nothing was put on the GPU")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    scored = subprocess.run(
        [sys.executable, "-c", SCORE_ON_CPU, result.model_uri],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if scored.returncode != 0:
        raise SystemExit(f"{arch}: the logged model did not score on CPU:\n{scored.stderr[-3000:]}")
    return {
        "arch": arch,
        "accelerator": accelerator,
        "preset": preset,
        "test_acc": round(result.metrics["test_acc"], 4),
        "epochs": result.epochs_trained,
        "fit_seconds": round(result.train_seconds, 1),
        "seconds_per_epoch": round(result.train_seconds / max(result.epochs_trained, 1), 1),
        "call_seconds": round(time.perf_counter() - start, 1),
        "peak_gpu_mb": round(peak / 2**20),
        "scored_on_cpu": json.loads(scored.stdout.strip().splitlines()[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["dense", "cnn"])
    parser.add_argument("--preset", default="tuned")
    parser.add_argument(
        "--size", type=int, help="synthetic reviews in all (default: the pipeline's corpus)"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible here")
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["IMDB_SENTIMENT_ARTIFACT_ROOT"] = str(work / "artifacts")
    os.environ["IMDB_SENTIMENT_CACHE_DIR"] = str(work / "cache")
    if args.size:
        import data.prepare

        data.prepare.SYNTHETIC_SIZE = args.size  # a benchmark-only corpus size
    print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}))
    for arch in args.archs:
        print(json.dumps(train_on(arch, "gpu", args.preset)), flush=True)
    if not args.size:  # once is enough to see that `auto` picks the GPU
        print(json.dumps(train_on(args.archs[0], "auto", args.preset)), flush=True)


if __name__ == "__main__":
    main()
