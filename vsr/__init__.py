"""vsrlab: trainable video super-resolution."""

__version__ = "0.1.0"

SUPPORTED_SCALES = (2, 3, 4, 8)
