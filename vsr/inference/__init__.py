"""Inference on exported models: `load(dir)`, the streaming `Upscaler`, and `run(cfg)` for upscale.py.

Imports neither Lightning nor Hydra, so an exported model runs with torch, safetensors and PyAV.
"""

from vsr.inference.upscaler import Upscaler
from vsr.runtimes.model_files import load


def run(cfg) -> dict:
    """Upscale `cfg.input` into `cfg.output` (options: vsr/options.py, UpscaleOptions); returns the summary dict."""
    from vsr.inference.video import upscale_video

    return upscale_video(cfg)


__all__ = ["load", "Upscaler", "run"]
