"""python -m streamssm.train kws|asr --config FILE: train a model (resumes from its last checkpoint).

Under torchrun (e.g. `torchrun --nproc_per_node 2 -m streamssm.train asr ...`) every process
trains on its own batches and gradients are averaged (DistributedDataParallel).
"""

import argparse

from . import asr, kws

TASKS = {"kws": (kws.KWSTrainConfig, kws.train), "asr": (asr.ASRTrainConfig, asr.train)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m streamssm.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASKS), help="what to train")
    parser.add_argument("--config", help="JSON file of training settings (defaults for the rest)")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    args = parser.parse_args(argv)
    config_class, train = TASKS[args.task]
    config = config_class.from_file(args.config) if args.config else config_class()
    if args.steps:
        config.steps = args.steps
    print(f"model written to {train(config)}")


if __name__ == "__main__":
    main()
