"""Train a video super-resolution GAN: python train.py [model=...] [data=...] [scale=4] ..."""

import hydra

from vsr.errors import one_line_errors


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
@one_line_errors
def main(cfg):
    from vsr.training import run

    return run(cfg)


if __name__ == "__main__":
    main()
