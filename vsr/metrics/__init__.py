"""Image and video quality metrics: fidelity (PSNR/SSIM, BasicSR conventions), LPIPS, flicker.

All functions take frames `(N, 3, H, W)` RGB (float in [0, 1] or uint8) and return one
value per frame (or per pair of consecutive frames for flicker) as float64 tensors.
"""

from vsr.metrics.fidelity import psnr, rgb_to_y, ssim, to_uint8
from vsr.metrics.flicker import tlp, tof, warp_error
from vsr.metrics.flow import estimate_flow
from vsr.metrics.perceptual import LpipsUnavailable, load_lpips, lpips_distance

__all__ = ["psnr", "ssim", "rgb_to_y", "to_uint8", "tof", "tlp", "warp_error", "estimate_flow",
           "LpipsUnavailable", "load_lpips", "lpips_distance"]
