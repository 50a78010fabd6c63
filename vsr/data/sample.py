"""Built-in sample clips: scikit-image's photographs filmed by a smooth random camera path.

No download: the photos ship inside scikit-image. Each clip is one photo seen through a
virtual camera that pans along a curved path, zooms and rotates slightly (kornia warps),
so the frames have real sub-pixel motion. Deterministic for a given seed and index.
"""

import glob
import math
from pathlib import Path

import numpy as np
import torch
from kornia.geometry.transform import warp_affine
from skimage import data as skdata
from skimage.io import imread
from torch.nn import functional as F
from torch.utils.data import Dataset

from vsr.data.degradations import check_divisible
from vsr.errors import UserError
from vsr.io.images import quantize, to_tensor

TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
VAL_PHOTOS = ("chelsea",)  # held out: never seen in training


def load_photo(name: str, max_side: int | None = None) -> torch.Tensor:
    """A photo as `(1, 3, H, W)` float in [0, 1]: a scikit-image sample name or an image file.

    Photos larger than `max_side` are downscaled (antialiased) so that a patch shows about
    as much of the scene as a frame of real video does, and downscaling also removes the
    camera's own blur and JPEG noise from the HR targets.
    """
    if "/" in name or "." in name:
        file = Path(name).expanduser()
        if not file.is_file():
            raise UserError(f"data.photos: image file {name} not found")
        try:
            image = imread(file)
        except Exception as err:
            raise UserError(f"data.photos: cannot read image {name} ({type(err).__name__})") from None
    else:
        try:
            image = getattr(skdata, name)()
        except AttributeError:
            raise UserError(f"data.photos: {name!r} is neither an image file nor a scikit-image sample photo") from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3])
    photo = to_tensor([image])
    if max_side and max(photo.shape[-2:]) > max_side:
        factor = max_side / max(photo.shape[-2:])
        size = (round(photo.shape[-2] * factor), round(photo.shape[-1] * factor))
        photo = F.interpolate(photo, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    return photo


def expand_photos(entries: list[str]) -> list[str]:
    """Sample names stay as they are; globs (`/usr/share/backgrounds/mate/nature/*.jpg`) expand."""
    names = []
    for entry in entries:
        if any(c in entry for c in "*?["):
            matches = sorted(glob.glob(str(Path(entry).expanduser())))
            if not matches:
                raise UserError(f"data.photos: {entry} matches no files")
            names += matches
        else:
            names.append(entry)
    return names


def camera_path(rng: np.random.Generator, num_frames: int, photo_hw: tuple[int, int], out_size: int,
                max_speed: float, max_zoom: float, max_rotation: float, substeps: int = 1,
                zoom_range: tuple = (0.8, 1.2)) -> torch.Tensor:
    """Affine matrices `(T, 2, 3)` mapping photo pixels to frame pixels along a smooth path.

    The camera centre moves with a random velocity that turns slowly (curved pan), the zoom
    changes by up to `max_zoom` per frame and the roll by up to `max_rotation` degrees.
    With `substeps` > 1 the `num_frames` positions are that many per frame (motion blur), each
    a `substeps`-th of a frame's motion apart. `zoom_range`: photo pixels per frame pixel at the
    start (below 1 magnifies the photo, which softens the frames).
    """
    h, w = photo_hw
    zoom0 = rng.uniform(*zoom_range)
    zoom_rate = rng.uniform(-max_zoom, max_zoom)
    angle0, angle_rate = rng.uniform(-5, 5), rng.uniform(-max_rotation, max_rotation)
    speed, heading, turn = rng.uniform(0.2, 1.0) * max_speed, rng.uniform(0, 2 * math.pi), rng.uniform(-0.15, 0.15)
    frames = num_frames / substeps
    # Keep the whole path inside the photo: margin covers the rotated, zoomed frame and the travel.
    reach = out_size * 0.75 * max(zoom0 * (1 + max_zoom * frames), 1) + speed * frames
    cx = rng.uniform(min(reach, w / 2), max(w - reach, w / 2))
    cy = rng.uniform(min(reach, h / 2), max(h - reach, h / 2))
    mats = []
    for t in range(num_frames):
        zoom = zoom0 * (1 + zoom_rate * t / substeps)
        theta = math.radians(angle0 + angle_rate * t / substeps)
        cos, sin = math.cos(theta) / zoom, math.sin(theta) / zoom
        # frame = R/zoom (photo - centre) + out_centre
        c = out_size / 2 - 0.5
        mats.append([[cos, -sin, c - cos * cx + sin * cy], [sin, cos, c - sin * cx - cos * cy]])
        heading += turn / substeps
        cx, cy = cx + speed / substeps * math.cos(heading), cy + speed / substeps * math.sin(heading)
    return torch.tensor(mats, dtype=torch.float32)


class SampleClips(Dataset):
    """HR clips synthesised from photos, with LR made by `degradation`.

    Args:
        split: "train" (random clips from TRAIN_PHOTOS) or "val" (fixed clips from VAL_PHOTOS).
        scale: upscale factor; `patch_size` must be divisible by it.
        degradation: callable HR clip `(T, C, H, W)` -> LR clip.
        num_frames: frames per clip.
        patch_size: HR frame size (square).
        num_clips: clips per epoch (train) or in total (val).
        seed: base seed; clip i of the split is always the same clip.
        max_speed: camera speed in HR pixels per frame.
        max_zoom, max_rotation: per-frame zoom change (fraction) and roll (degrees).
        photos: override the photo list of the split: sample names, image files or globs.
        photo_max_side: downscale larger photos to this longest side (null: keep).
    """

    def __init__(self, split: str = "train", scale: int = 4, degradation=None, num_frames: int = 5,
                 patch_size: int = 128, num_clips: int = 1000, seed: int = 0, max_speed: float = 6.0,
                 max_zoom: float = 0.01, max_rotation: float = 0.5, photos: list[str] | None = None,
                 photo_max_side: int | None = None):
        check_divisible("data.patch_size", patch_size, scale)
        if num_frames < 1:
            raise UserError(f"data.num_frames={num_frames} must be at least 1")
        self.split, self.scale, self.degradation = split, scale, degradation
        self.num_frames, self.patch_size, self.num_clips = num_frames, patch_size, num_clips
        self.motion = dict(max_speed=max_speed, max_zoom=max_zoom, max_rotation=max_rotation)
        self.seed = seed + (0 if split == "train" else 10_000)
        self.names = tuple(expand_photos(list(photos)) if photos else
                           (TRAIN_PHOTOS if split == "train" else VAL_PHOTOS))
        self.photos = [load_photo(n, photo_max_side) for n in self.names]
        for name, photo in zip(self.names, self.photos):
            if min(photo.shape[-2:]) < 2 * patch_size:
                raise UserError(f"data.patch_size={patch_size} is too large for photo {name!r} "
                                f"{tuple(photo.shape[-2:])}; use at most {min(photo.shape[-2:]) // 2}")

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, index])
        k = index % len(self.photos) if self.split != "train" else int(rng.integers(len(self.photos)))
        photo = self.photos[k]
        mats = camera_path(rng, self.num_frames, tuple(photo.shape[-2:]), self.patch_size, **self.motion)
        src = photo.expand(self.num_frames, -1, -1, -1)
        hr = warp_affine(src, mats, dsize=(self.patch_size, self.patch_size), mode="bicubic",
                         padding_mode="reflection", align_corners=True).clamp(0, 1)
        if self.split == "train" and rng.random() < 0.5:
            hr = hr.flip(-1)
        # frames are uint8 on disk in real datasets: quantise so sample data behaves the same
        hr = quantize(hr)
        lr = self.degradation(hr) if self.degradation is not None else hr
        lr = quantize(lr)
        return {"lr": lr, "hr": hr, "name": f"{Path(self.names[k]).stem}_{index:04d}"}
