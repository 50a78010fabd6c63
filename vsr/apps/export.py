"""Export a checkpoint for inference: python export.py checkpoint=CKPT output_dir=DIR [formats=[onnx,torchscript]]"""

import hydra

import vsr.conf  # noqa: F401  (registers the options the configs compose onto)
from vsr.errors import one_line_errors
from vsr.overrides import refuse_unknown_keys


@refuse_unknown_keys("export")
@hydra.main(config_path="../conf", config_name="export", version_base="1.3")
@one_line_errors
def main(cfg) -> None:
    from vsr.export import run

    run(cfg)


def cli() -> None:
    main()
