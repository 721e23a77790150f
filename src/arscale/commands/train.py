"""`arscale train ...`: training of the shipped ShapeWorld models. Each trainer module under
`arscale.train` exposes `register(subparsers)`."""

from __future__ import annotations

import importlib

TRAINERS = [
    "arscale.train.tokenizer_multiscale",  # arscale train shapeworld-tokenizer
    "arscale.train.var",  # arscale train shapeworld-var
    "arscale.train.tokenizer_vq",  # arscale train shapeworld-ar-tokenizer
    "arscale.train.ar",  # arscale train shapeworld-ar
    "arscale.train.reward",  # arscale train shapeworld-reward
]


def register(sub) -> None:
    parser = sub.add_parser("train", help="train the shipped ShapeWorld models")
    trainers = parser.add_subparsers(dest="model", metavar="MODEL")
    for name in TRAINERS:
        importlib.import_module(name).register(trainers)
    for trainer in trainers.choices.values():  # however a trainer ends, Ctrl-C and its data workers are given back
        trainer.set_defaults(func=_releasing(trainer.get_default("func")))
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _releasing(main):
    def run(args):
        from arscale.train.run_control import release_trainer, stopped_by_signal

        release_trainer()  # whatever a trainer called outside `arscale train` left is not this run's to tidy
        failed = True
        try:
            code = main(args)
            failed = False
            if stopped_by_signal():  # saved but not done: 130 / 143, as `cli` answers any stopped command
                raise KeyboardInterrupt
            return code
        finally:
            release_trainer(failed)

    return run
