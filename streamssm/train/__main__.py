"""python -m streamssm.train kws|asr --config FILE: train a model (resumes from its last checkpoint).

Under torchrun (e.g. `torchrun --nproc_per_node 2 -m streamssm.train asr ...`) every process
trains on its own batches and gradients are averaged (DistributedDataParallel).
"""

import argparse
import dataclasses
import json

from . import asr, kws
from .common import close_distributed

TASKS = {"kws": (kws.KWSTrainConfig, kws.train), "asr": (asr.ASRTrainConfig, asr.train)}


def parse_setting(parser, item: str, config_class) -> tuple[str, object]:
    key, separator, text = item.partition("=")
    if not separator or key not in {f.name for f in dataclasses.fields(config_class)}:
        parser.error(f"--set {item!r}: expected KEY=VALUE with KEY a setting of {config_class.__name__}")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task", choices=sorted(TASKS), help="what to train")
    parser.add_argument("--config", help="JSON file of training settings (defaults for the rest)")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, VALUE as JSON (e.g. --set distill_weight=0 --set out_dir='\"x\"'; "
        "a VALUE that is not JSON is taken as a string); repeatable",
    )
    args = parser.parse_args(argv)
    config_class, train = TASKS[args.task]
    config = config_class.from_file(args.config) if args.config else config_class()
    overrides = dict(parse_setting(parser, item, config_class) for item in args.set)
    if args.steps:
        overrides["steps"] = args.steps
    config = dataclasses.replace(config, **overrides)
    try:
        model_dir = train(config)
    finally:
        close_distributed()
    print(f"model written to {model_dir}")


if __name__ == "__main__":
    main()
