"""Upscale a video: python upscale.py input=IN_VIDEO output=OUT_VIDEO weights=DIR [tile=..] [chunk=..]"""

import hydra

import vsr.conf  # noqa: F401  (registers the options the configs compose onto)
from vsr.errors import one_line_errors
from vsr.overrides import refuse_unknown_keys


@refuse_unknown_keys("upscale")
@hydra.main(config_path="../conf", config_name="upscale", version_base="1.3")
@one_line_errors
def main(cfg) -> None:
    from vsr.inference import run

    run(cfg)


def cli() -> None:
    main()
