"""The command line of `python -m models.train` (or `python -m models.cli`; examples in train.py).

Kept apart from the training code, which the Prefect tasks import without any CLI. Every argument
is checked before any data is prepared (the rules of the flow's parameters where they overlap):
a bad value exits with status 2 and one line naming it; an unusable tracking store, or a run that
diverged, exits with status 1 and one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.accelerators import AcceleratorRegistry
from pytorch_lightning.strategies import StrategyRegistry
from pytorch_lightning.utilities import rank_zero_only

from config import get_settings
from data.prepare import DATASETS, prepare_dataset
from models.lifeline import die_with_parent
from models.presets import ARCHS, DEFAULT_PRESET, PRESETS, check_seed
from models.tracking import NonFiniteMetricsError, TrackingUnavailableError, check_tracking_store
from models.train import LOG_EVERY_N_STEPS, TrainResult, check_limit, resolve_preset, train

MIN_LIMIT = 4  # reviews per split: as data.prepare.limit_reviews and the flow's `limit`
Devices = int | str | list[int]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    return key.strip(), _parse_value(value)


def parse_devices(text: str) -> Devices:
    """'auto', a positive device count (`2`) or a comma-separated list of device ids (`0,1`, `1,`)."""
    text = text.strip()
    if text == "auto":
        return text
    try:
        if "," in text:
            ids = [int(part) for part in text.split(",") if part.strip()]
            if ids and min(ids) >= 0 and len(set(ids)) == len(ids):
                return ids
        elif int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise ValueError(
        "devices must be 'auto', a positive count (2) or a list of distinct device ids "
        f"(0,1 or 1, for device 1 alone), got {text!r}"
    )


def _available(accelerator: str) -> bool:
    return bool(AcceleratorRegistry[accelerator]["accelerator"].is_available())


def check_accelerator(name: str, devices: Devices) -> None:
    """An accelerator Lightning knows, usable on this machine, with devices it accepts."""
    known = sorted(AcceleratorRegistry.available_accelerators())
    if name not in (*known, "auto", "gpu"):
        raise ValueError(
            f"unknown accelerator {name!r}; choose one of auto, gpu, {', '.join(known)}"
        )
    gpus = [key for key in ("cuda", "mps") if key in known]
    if name == "gpu" and not any(_available(key) for key in gpus):
        raise ValueError("accelerator 'gpu': no GPU is available here; use auto or cpu")
    if name in known and not _available(name):
        raise ValueError(f"accelerator {name!r} is not available here; use auto or cpu")
    if name == "cpu" and isinstance(devices, list):
        raise ValueError(f"with accelerator 'cpu', devices is a process count, got {devices}")


def check_strategy(name: str) -> None:
    """A strategy name Lightning knows (it compares them in lower case)."""
    known = StrategyRegistry.available_strategies()
    if name.lower() != "auto" and name.lower() not in known:
        common = sorted(k for k in known if "find_unused" not in k and "offload" not in k)
        raise ValueError(f"unknown strategy {name!r}; choose auto or one of {', '.join(common)}")


def check_positive(value: int | None, name: str, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Train one sentiment architecture and log it to MLflow (experiment "
        "imdb-sentiment). The data is prepared (cached) with the preset's vocabulary size and "
        "length first.",
    )
    parser.add_argument("--arch", required=True, choices=ARCHS)
    parser.add_argument("--dataset", default="imdb", choices=DATASETS)
    parser.add_argument("--data-path", help="IMDB archive or aclImdb/ folder (default: settings)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        type=_parse_override,
        default=[],
        help="override any preset field, e.g. --set embedding_dim=32 --set channels=[8,8,8]",
    )
    parser.add_argument("--limit", type=int, help="reviews per split (class-balanced), quick runs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--accelerator", default="auto", help="auto, cpu, gpu, ...")
    parser.add_argument("--devices", default="auto", help="auto, a count N, or ids 0,1")
    parser.add_argument("--strategy", default="auto", help="auto, ddp, ...")
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument(
        "--limit-batches", type=_parse_value, help="train/val batches per epoch (N or fraction)"
    )
    parser.add_argument(
        "--log-every-n-steps", type=int, help=f"default {LOG_EVERY_N_STEPS}, less on short epochs"
    )
    parser.add_argument("--run-name")
    parser.add_argument("--no-register", action="store_true", help="do not register the model")
    parser.add_argument(
        "--prepared-dir",
        help="train on this already-prepared folder (data.prepare) instead of preparing one; "
        "--dataset and --data-path are then unused and --limit is only recorded",
    )
    parser.add_argument(
        "--result-json", metavar="FILE", help="also write the result as JSON to FILE (rank 0)"
    )
    parser.add_argument(
        "--die-with-parent",
        action="store_true",
        help="exit when the process that started this one dies (Linux; the pipeline sets it)",
    )
    return parser


def write_result(result: TrainResult, path: str) -> None:
    """The result as JSON, written under a temporary name and renamed (never half a file)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
    os.replace(partial, target)


def main(argv: list[str] | None = None) -> TrainResult:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.die_with_parent:
        die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = dict(args.overrides)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    try:  # before preparing any data
        spec = resolve_preset(args.arch, args.preset, overrides)
        check_seed(args.seed)
        check_positive(args.limit, "limit", MIN_LIMIT)
        devices = parse_devices(args.devices)
        check_accelerator(args.accelerator, devices)
        check_strategy(args.strategy)
        check_positive(args.num_nodes, "num_nodes")
        check_positive(args.log_every_n_steps, "log_every_n_steps")
        check_limit(args.limit_batches)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    try:
        check_tracking_store(get_settings().mlflow_tracking_uri)
    except TrackingUnavailableError as error:
        parser.exit(1, f"error: {error}\n")
    prepared_dir = args.prepared_dir or prepare_dataset(
        args.dataset,
        args.data_path,
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        limit=args.limit,
        seed=args.seed,
    )
    try:
        result = train(
            args.arch,
            prepared_dir,
            preset=args.preset,
            overrides=overrides,
            seed=args.seed,
            accelerator=args.accelerator,
            devices=devices,
            strategy=args.strategy,
            num_nodes=args.num_nodes,
            register=not args.no_register,
            run_name=args.run_name,
            extra_params={"limit": args.limit},
            limit_batches=args.limit_batches,
            log_every_n_steps=args.log_every_n_steps,
        )
    except NonFiniteMetricsError as error:  # the run is marked FAILED, nothing registered
        parser.exit(1, f"error: {error}\n")
    if rank_zero_only.rank == 0:
        print(json.dumps(result.as_dict(), indent=2))
        if args.result_json:
            write_result(result, args.result_json)
    return result


if __name__ == "__main__":
    main()
