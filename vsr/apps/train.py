"""Train a video super-resolution model: python train.py [model=...] [data=...] [scale=4] ...
Go on with a run: python train.py resume=RUN [trainer.max_steps=...]"""

import sys

import hydra

from vsr.errors import UserError, one_line_errors
from vsr.overrides import refuse_unknown_keys
from vsr.training.resume import expand_resume


@refuse_unknown_keys("train")
@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
@one_line_errors
def main(cfg):
    from vsr.training import run

    return run(cfg)


def cli() -> None:
    try:
        sys.argv = expand_resume(sys.argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    main()
