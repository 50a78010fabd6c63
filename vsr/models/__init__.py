"""Generators and discriminators. Build them from config with `hydra.utils.instantiate`,
or from a plain dict (model.json, checkpoints) with `vsr.models.build.build_generator`."""

from vsr.models.discriminators import SpatioTemporalDiscriminator, UNetDiscriminatorSN
from vsr.models.recurrent import RecurrentRRDBNet
from vsr.models.rrdb import RRDBNet

__all__ = ["RRDBNet", "RecurrentRRDBNet", "UNetDiscriminatorSN", "SpatioTemporalDiscriminator"]
