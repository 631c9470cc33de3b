"""python -m streamssm.train kws --config FILE: train a model (resumes from its last checkpoint).

Under torchrun (e.g. `torchrun --nproc_per_node 2 -m streamssm.train kws ...`) every process
trains on its own examples and gradients are averaged (DistributedDataParallel).
"""

import argparse

from . import kws


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m streamssm.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["kws"], help="what to train")
    parser.add_argument("--config", help="JSON file of training settings (defaults for the rest)")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    args = parser.parse_args(argv)
    config = kws.KWSTrainConfig.from_file(args.config) if args.config else kws.KWSTrainConfig()
    if args.steps:
        config.steps = args.steps
    print(f"model written to {kws.train(config)}")


if __name__ == "__main__":
    main()
