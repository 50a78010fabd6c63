"""Benchmark a checkpoint, an exported model or a baseline; options: vsr/options.py (EvaluateOptions).

python evaluate.py checkpoint=CKPT_OR_EXPORT_DIR data=video data.path=FILE scale=4 hydra.run.dir=RUN
"""

import hydra
from omegaconf import DictConfig

import vsr.conf  # noqa: F401  (registers the options the configs compose onto)
from vsr.errors import one_line_errors
from vsr.overrides import refuse_unknown_keys


@refuse_unknown_keys("evaluate")
@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> float | None:
    from vsr.evaluation import run

    return run(cfg)


def cli() -> None:
    main()
