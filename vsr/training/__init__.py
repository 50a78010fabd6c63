"""Training: the LightningModule (GAN with EMA), and `run(cfg)` behind train.py."""


def run(cfg):
    from vsr.training.job import run as _run  # imported lazily: keeps `import vsr.training` light

    return _run(cfg)
