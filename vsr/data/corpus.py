"""Training clips from the offline corpus (`datasets/prepare.py corpus ROOT`).

Layout under `root`: `photos/<split>/*.{jpg,png}` (real photographs) and
`videos/<split>/<clip>/<frame>.png` (real footage decoded by `prepare.py`).

A photo clip is a scene with motion like real video: a background photo seen through a
camera path, and up to `max_layers` objects (soft-edged cut-outs of other photos) moving on
their own paths over it, so the frames hold occlusions and disocclusions that one global
warp never shows; some clips get motion blur (the shutter open over part of each frame's
motion) and a slow exposure drift. A share of the items (`video_share`) are windows of the
real clips instead. Same seed and index, same clip.
"""

import logging
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vsr.data.degradations import check_divisible, degrade
from vsr.data.frames import Clip, FrameClips, image_size, list_images
from vsr.data.sample import camera_path, load_photo
from vsr.errors import UserError, check_choice
from vsr.io.images import quantize, to_uint8

log = logging.getLogger(__name__)

LAYOUT = "ROOT/photos/<split>/*.jpg|png and ROOT/videos/<split>/<clip>/<frame>.png (datasets/prepare.py corpus ROOT)"
SPLITS = ("train", "val")


def find_photos(root: Path, split: str) -> list[Path]:
    folder = root / "photos" / split
    return list_images(folder) if folder.is_dir() else []


def find_video_clips(root: Path, split: str) -> list[Clip]:
    folder = root / "videos" / split
    if not folder.is_dir():
        return []
    clips = [Clip(d.name, list_images(d)) for d in sorted(folder.iterdir()) if d.is_dir()]
    return [c for c in clips if c.hr]


def warp(image: np.ndarray, matrix: np.ndarray, size: int, interpolation: int, border: int) -> torch.Tensor:
    """`image` seen through the affine `matrix` (image pixels -> frame pixels) as a `size` x `size` frame.
    OpenCV: an order of magnitude faster on a CPU than a grid sample, which the loader workers need."""
    return torch.from_numpy(cv2.warpAffine(image, matrix, (size, size), flags=interpolation, borderMode=border))


def soft_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A `(size, size)` float32 object mask: a random ellipse whose edge is a few pixels wide, as the
    edge of a real object is after the lens and the sensor; it is warped with its layer."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    a, b = rng.uniform(0.12, 0.35, size=2) * size
    theta = rng.uniform(0, math.pi)
    u = (math.cos(theta) * x + math.sin(theta) * y) / a
    v = (-math.sin(theta) * x + math.cos(theta) * y) / b
    # a wobbly outline: the radius varies with the angle, so objects are not perfect ellipses
    angle = torch.atan2(v, u)
    wobble = 1 + sum(rng.uniform(-0.12, 0.12) * torch.cos(k * angle + rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5))
    dist = torch.sqrt(u ** 2 + v ** 2) - wobble
    edge = rng.uniform(0.01, 0.05)
    return torch.sigmoid(-dist / edge).numpy()


class CorpusClips(Dataset):
    """HR clips from the corpus's photos (layered motion) and real clips, LR by `degradation`.

    Args:
        root: the corpus folder (`datasets/prepare.py corpus ROOT`).
        split: "train" (random items) or "val" (fixed photo clips, then each real clip's first frames).
        scale, degradation, num_frames, patch_size: as the other datasets.
        num_clips: photo-and-video items per epoch (train) or photo clips (val).
        seed: base seed.
        video_share: fraction of training items that are windows of real clips.
        max_layers: moving objects over the background per photo clip (0 to this many).
        motion_blur_prob, exposure_prob: share of photo clips with motion blur / exposure drift.
        max_speed, max_zoom, max_rotation: camera motion (HR pixels, fraction, degrees per frame).
        photo_max_side: photos are shrunk to this longest side when loaded.
        max_photos: use at most this many photos (evenly spaced by name; null: all).
    """

    def __init__(self, root: str, split: str = "train", scale: int = 4, degradation=None, num_frames: int = 6,
                 patch_size: int = 128, num_clips: int = 2000, seed: int = 0, video_share: float = 0.3,
                 max_layers: int = 2, motion_blur_prob: float = 0.3, exposure_prob: float = 0.2,
                 max_speed: float = 8.0, max_zoom: float = 0.01, max_rotation: float = 0.5,
                 photo_max_side: int = 1024, max_photos: int | None = None):
        check_choice("data split", split, SPLITS)
        check_divisible("data.patch_size", patch_size, scale)
        if not 0 <= video_share <= 1:
            raise UserError(f"data.video_share={video_share} must be between 0 and 1")
        base = Path(root).expanduser()
        if not base.is_dir():
            raise UserError(f"data.root={root}: folder not found; build it with "
                            f"`python datasets/prepare.py corpus {root}` (datasets/README.md)")
        self.split, self.scale, self.degradation = split, scale, degradation
        self.num_frames, self.patch_size, self.num_clips = num_frames, patch_size, num_clips
        self.seed = seed + (0 if split == "train" else 10_000)
        self.video_share, self.max_layers = video_share, max_layers
        self.blur_prob, self.exposure_prob = motion_blur_prob, exposure_prob
        self.motion = dict(max_speed=max_speed, max_zoom=max_zoom, max_rotation=max_rotation)
        paths = find_photos(base, split)
        if max_photos and len(paths) > max_photos:
            paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_photos).round().astype(int)]
        if not paths:
            raise UserError(f"data.root={root}: no photos in photos/{split}/; expected {LAYOUT}")
        # uint8 (H, W, 3) in memory: a float copy of a few hundred photos would take gigabytes
        photos = {p.stem: to_uint8(load_photo(str(p), photo_max_side))[0]
                  for p in paths}
        # a camera path needs room around the patch; smaller photos are left out, and said so
        small = [name for name, photo in photos.items() if min(photo.shape[:2]) < 3 * patch_size // 2]
        if small:
            log.info("data %s: %d photo(s) smaller than 1.5 x data.patch_size=%d left out: %s", split, len(small),
                     patch_size, ", ".join(small))
        self.names = [name for name in photos if name not in small]
        self.photos = [photos[name] for name in self.names]
        if not self.photos:
            raise UserError(f"data.patch_size={patch_size} is too large for every photo in {base / 'photos' / split}; "
                            f"use at most {max(min(p.shape[:2]) for p in photos.values()) * 2 // 3}")
        clips = find_video_clips(base, split)
        if split == "train":  # a window needs the whole patch; smaller clips are left out, and said so
            small = [c.name for c in clips if min(image_size(c.hr[0])) < patch_size]
            if small:
                log.info("data train: %d clip(s) smaller than data.patch_size=%d left out: %s", len(small),
                         patch_size, ", ".join(small))
            clips = [c for c in clips if c.name not in small]
        self.videos = None
        if clips and (split == "val" or video_share > 0):
            self.videos = FrameClips(clips, scale=scale, degradation=degradation, num_frames=num_frames,
                                     patch_size=patch_size if split == "train" else None,
                                     random=split == "train")

    def __len__(self) -> int:
        if self.split == "train":
            return self.num_clips
        return self.num_clips + (len(self.videos.clips) if self.videos else 0)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        if self.split == "val" and index >= self.num_clips:
            return self._val_video(index - self.num_clips)
        if self.split == "train" and self.videos is not None and rng.random() < self.video_share:
            return self.videos[int(rng.integers(len(self.videos.clips)))]
        hr = self.photo_clip(rng)
        if self.split == "train" and rng.random() < 0.5:
            hr = hr.flip(-1)
        hr = quantize(hr)  # frames are uint8 in real datasets
        lr = degrade(self.degradation, hr.contiguous(), int(rng.integers(2**62)))
        lr = quantize(lr)
        k = index % len(self.names)
        return {"lr": lr.float(), "hr": hr, "name": f"{self.names[k]}_{index:05d}"}

    def _val_video(self, i: int) -> dict:
        item = self.videos.load(i)
        # a centre crop bounds validation memory on large clips; whole frames when they are small
        side = 4 * self.patch_size
        h, w = item["hr"].shape[-2:]
        top = max(0, (h - side) // 2) // self.scale * self.scale
        left = max(0, (w - side) // 2) // self.scale * self.scale
        s = self.scale
        return {"lr": item["lr"][..., top // s: (top + side) // s, left // s: (left + side) // s],
                "hr": item["hr"][..., top: top + side, left: left + side], "name": item["name"]}

    def photo_clip(self, rng: np.random.Generator) -> torch.Tensor:
        """`(T, 3, P, P)` float HR frames: background, moving layers, motion blur, exposure drift."""
        pick = lambda: int(rng.integers(len(self.photos)))  # noqa: E731
        blur = rng.random() < self.blur_prob
        substeps = int(rng.integers(3, 6)) if blur else 1
        shutter = int(rng.integers(2, substeps + 1)) if blur else 1  # sub-steps the shutter is open for
        clip = self.render(self.photos[pick()], rng, substeps, shutter)
        for _ in range(int(rng.integers(0, self.max_layers + 1))):
            layer = self.render(self.photos[pick()], rng, substeps, shutter, mask=soft_mask(rng, self.patch_size))
            alpha = layer[:, 3:]
            clip = alpha * layer[:, :3] + (1 - alpha) * clip
        if rng.random() < self.exposure_prob:
            gains = torch.linspace(0, float(rng.uniform(-0.35, 0.35)), self.num_frames).exp()
            clip = clip * gains[:, None, None, None]
        return clip.clamp(0, 1)

    def render(self, photo: np.ndarray, rng: np.random.Generator, substeps: int, shutter: int,
               mask: np.ndarray | None = None) -> torch.Tensor:
        """A photo (and, for a layer, its mask as a 4th channel) filmed along a random path.

        With motion blur each frame averages the first `shutter` of its `substeps` positions.
        """
        t, p = self.num_frames, self.patch_size
        motion = dict(self.motion)
        if mask is not None:
            motion["max_speed"] *= 1.5  # objects move on their own, often faster than the camera
        # zoom >= 1: never magnify a photo, which would teach the model soft targets
        mats = camera_path(rng, t * substeps, tuple(photo.shape[:2]), p, substeps=substeps, zoom_range=(1.0, 1.25),
                           **motion)
        frames = torch.stack([warp(photo, m, p, cv2.INTER_CUBIC, cv2.BORDER_REFLECT_101) for m in mats.numpy()])
        frames = frames.permute(0, 3, 1, 2).float() / 255
        if mask is not None:
            # the mask lives in frame 0's coordinates: carry it along the layer's own motion
            first = torch.cat([mats[0], torch.tensor([[0.0, 0.0, 1.0]])])
            rel = (mats @ torch.linalg.inv(first)).numpy()
            alpha = torch.stack([warp(mask, m, p, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT) for m in rel])
            frames = torch.cat([frames, alpha[:, None]], 1)
        frames = frames.view(t, substeps, *frames.shape[1:])[:, :shutter].mean(1)
        return frames
