"""The command line of `python -m models.train` (or `python -m models.cli`; examples in train.py).

Kept apart from the training code, which the Prefect tasks import without any CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from pytorch_lightning.utilities import rank_zero_only

from config import get_settings
from data.prepare import DATASETS, prepare_dataset
from models.presets import ARCHS, DEFAULT_PRESET, PRESETS
from models.tracking import TrackingUnavailableError, check_tracking_server
from models.train import LOG_EVERY_N_STEPS, TrainResult, check_limit, resolve_preset, train


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


def _parse_devices(text: str) -> int | str | list[int]:
    if text.isdigit():
        return int(text)
    if "," in text:
        return [int(part) for part in text.split(",") if part]
    return text


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
    parser.add_argument("--devices", default="auto", type=_parse_devices, help="auto, N or 0,1")
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
    return parser


def main(argv: list[str] | None = None) -> TrainResult:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = dict(args.overrides)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    try:  # before preparing any data
        spec = resolve_preset(args.arch, args.preset, overrides)
        check_limit(args.limit_batches)
        check_tracking_server(get_settings().mlflow_tracking_uri)
    except (ValueError, TrackingUnavailableError) as error:
        raise SystemExit(f"error: {error}") from None
    prepared_dir = prepare_dataset(
        args.dataset,
        args.data_path,
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        limit=args.limit,
        seed=args.seed,
    )
    result = train(
        args.arch,
        prepared_dir,
        preset=args.preset,
        overrides=overrides,
        seed=args.seed,
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        register=not args.no_register,
        run_name=args.run_name,
        extra_params={"limit": args.limit},
        limit_batches=args.limit_batches,
        log_every_n_steps=args.log_every_n_steps,
    )
    if rank_zero_only.rank == 0:
        print(json.dumps(result.as_dict(), indent=2))
    return result


if __name__ == "__main__":
    main()
