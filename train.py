"""Train a video super-resolution model: python train.py [model=...] [data=...] [scale=4] ...
Go on with a run: python train.py resume=RUN [trainer.max_steps=...]
"""

from vsr.apps.train import cli

if __name__ == "__main__":
    cli()
