"""Random crops and augmentations applied identically to an LR clip and its HR clip."""

import numpy as np
import torch


def paired_random_crop(lr: torch.Tensor | None, hr: torch.Tensor, hr_patch: int, scale: int,
                       rng: np.random.Generator) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Crop `(T, C, H, W)` HR to `hr_patch` square at a random place, and LR at the aligned place.

    With LR, the HR corner is `scale` x the LR corner so that the pair stays aligned pixel for pixel.
    Without LR (made later from the crop) the HR corner is still a multiple of `scale`.
    """
    h, w = hr.shape[-2:]
    lr_patch = hr_patch // scale
    top = int(rng.integers(0, h // scale - lr_patch + 1))
    left = int(rng.integers(0, w // scale - lr_patch + 1))
    hr = hr[..., top * scale: top * scale + hr_patch, left * scale: left * scale + hr_patch]
    if lr is not None:
        lr = lr[..., top: top + lr_patch, left: left + lr_patch]
    return lr, hr


def augment_pair(lr: torch.Tensor, hr: torch.Tensor, rng: np.random.Generator, flip: bool = True,
                 rotate: bool = True, reverse: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random horizontal/vertical flip, 90-degree rotation and temporal reversal of both clips.

    Rotation only applies to square frames (training patches); each transform has p = 0.5.
    """
    dims = []
    if flip and rng.random() < 0.5:
        dims.append(-1)
    if rotate and rng.random() < 0.5:
        dims.append(-2)
    if reverse and rng.random() < 0.5:
        dims.append(0)
    if dims:
        lr, hr = lr.flip(dims), hr.flip(dims)
    if rotate and hr.shape[-1] == hr.shape[-2] and rng.random() < 0.5:
        lr, hr = lr.transpose(-1, -2), hr.transpose(-1, -2)  # with the flips: all 8 rotations/reflections
    return lr, hr
