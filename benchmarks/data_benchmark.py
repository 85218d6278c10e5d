"""Data benchmark: parse time and peak memory for the full IMDB archive, cold and cached.

    IMDB_ARCHIVE=../shared/data/aclImdb_v1.tar.gz .venv/bin/python -m benchmarks.data_benchmark

Each phase runs in a fresh process so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

PHASE = """
import json, resource, sys, time
from data.prepare import prepare_dataset
start = time.perf_counter()
prepare_dataset("imdb", sys.argv[1] if len(sys.argv) > 1 else None)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_phase(env: dict[str, str], data_path: str | None) -> dict[str, float]:
    args = [sys.executable, "-c", PHASE] + ([data_path] if data_path else [])
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-path", default=None, help="archive or aclImdb/ folder (default: IMDB_ARCHIVE)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "IMDB_SENTIMENT_CACHE_DIR": cache}
        cold = run_phase(env, args.data_path)  # parse the tarball, split, vocabulary, encode
        cached = run_phase(env, args.data_path)  # hash the archive, find the prepared folder
    print(f"{'phase':<8} {'seconds':>8} {'peak MB':>8}")
    for name, result in (("cold", cold), ("cached", cached)):
        print(f"{name:<8} {result['seconds']:>8.2f} {result['peak_mb']:>8.0f}")


if __name__ == "__main__":
    main()
