"""Benchmark a checkpoint, an exported model or a baseline; options: vsr/options.py (EvaluateOptions).

python evaluate.py checkpoint=CKPT_OR_EXPORT_DIR data=video data.path=FILE scale=4 hydra.run.dir=RUN
"""

from vsr.apps.evaluate import cli

if __name__ == "__main__":
    cli()
