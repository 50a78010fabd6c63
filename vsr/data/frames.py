"""Clips stored as folders of frames: reading, layout checks and the shared dataset.

`FrameClips` turns a list of `Clip`s (HR frame paths, optional stored LR frame paths) into
training items (random temporal window, aligned LR/HR random crop, flips, 90-degree rotations,
temporal reversal) or evaluation items (whole clips, or their first `num_frames`). Scales or
degradations without stored LR frames get LR from HR on the fly. REDS, Vimeo-90K, Vid4 and
plain folders only differ in how they find their clips (`vsr.data.reds`, ...).
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vsr.data.augment import augment_pair, paired_random_crop
from vsr.data.degradations import check_divisible, degrade
from vsr.errors import UserError, check_choice
from vsr.io import images as io_images
from vsr.io.images import quantize, to_tensor

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
ON_ERROR = ("raise", "skip")
LR_SOURCES = ("auto", "stored", "degrade")
MAX_SKIPS_IN_A_ROW = 20
MAX_HEADER_CHECKS = 300  # clips whose first-frame headers are read at start (Vimeo-90K has 64612)


def load_or_skip(dataset, index: int, load, skippable, describe, items: str):
    """`load(index)`, or with `dataset.on_error == "skip"` the next items while `load` raises a
    skippable error: each skip is counted in `dataset.skipped` and logged; after
    MAX_SKIPS_IN_A_ROW in a row the data is declared broken."""
    for _ in range(MAX_SKIPS_IN_A_ROW):
        try:
            return load(index)
        except UserError as err:
            if dataset.on_error == "raise" or not skippable(err):
                raise
            dataset.skipped += 1
            log.warning("data.on_error=skip: %s (%d skipped in this process)", describe(index, err), dataset.skipped)
            index += 1
    raise UserError(f"data.on_error=skip: {MAX_SKIPS_IN_A_ROW} {items} in a row were unreadable; check the files")


def check_windows(num_frames: int | None, lengths: dict[str, int], key: str, items: str, hint: str = "") -> None:
    """One UserError naming every clip (`lengths`: name -> frames) shorter than the `num_frames`
    window, and `key`, the option that sets it. Datasets call it when they are built, so the user
    hears of all short clips at once before training, not of one in a DataLoader worker's traceback."""
    short = {name: n for name, n in lengths.items() if num_frames is not None and n < num_frames}
    if short:
        listed = ", ".join(f"{name} ({n} frames)" for name, n in list(short.items())[:5])
        listed += f" and {len(short) - 5} more" if len(short) > 5 else ""
        raise UserError(f"{key}={num_frames} is longer than {len(short)} of the {items}: {listed}; lower {key}"
                        f"{hint} to {min(short.values())} or less, or remove those {items}")


class UnreadableImage(UserError):
    """An image file that cannot be decoded (`data.on_error=skip` skips the clip)."""


@dataclass
class Clip:
    """One clip: its name, HR frame files and, when stored, the matching LR frame files."""

    name: str
    hr: list[Path]
    lr: list[Path] | None = None


def check_root(root, dataset: str, layout: str) -> Path:
    """`root` as a Path, or a UserError naming the path and the layout expected there."""
    path = Path(str(root)).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={root}: folder not found; expected the {dataset} layout {layout} "
                        "(see datasets/README.md; set data.root=... or the VSR_DATA_ROOT environment variable)")
    return path


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def read_image(path: Path) -> np.ndarray:
    """`(H, W, 3)` uint8 RGB (grey and alpha images converted), or UnreadableImage naming the file."""
    image = io_images.read_image(path)
    if image is None:
        raise UnreadableImage(f"{path}: unreadable image (missing, empty or corrupt); replace the file or "
                              "set data.on_error=skip to skip its clip")
    return image


def image_size(path: Path) -> tuple[int, int]:
    """`(width, height)` from the file header only."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:
        raise UnreadableImage(f"{path}: unreadable image (missing, empty or corrupt); replace the file or "
                              "set data.on_error=skip to skip its clip") from None


def check_numbering(name: str, frames: list[Path]) -> None:
    """Frames named by number (00000000.png, im1.png, ...) must have no gap: name the missing one."""
    numbers = []
    for f in frames:
        digits = re.findall(r"\d+", f.stem)
        if not digits:
            return
        numbers.append(int(digits[-1]))
    present = set(numbers)
    for expected in range(min(numbers), max(numbers) + 1):
        if expected not in present:
            example = frames[0].stem
            width = len(re.findall(r"\d+", example)[-1])
            missing = re.sub(r"\d+(?!.*\d)", str(expected).zfill(width), example) + frames[0].suffix
            raise UserError(f"clip {name}: frame {missing} is missing ({frames[0].name} .. {frames[-1].name} "
                            f"in {frames[0].parent}); restore it or remove the clip")


def clip_from_folders(name: str, hr_dir: Path, lr_dir: Path | None) -> Clip:
    """A Clip from an HR frame folder and an optional LR one with the same frame names."""
    hr = list_images(hr_dir)
    if not hr:
        raise UserError(f"clip {name}: no frames in {hr_dir} ({', '.join(IMAGE_EXTENSIONS)})")
    check_numbering(name, hr)
    if lr_dir is None:
        return Clip(name, hr)
    lr_names = {p.stem: p for p in list_images(lr_dir)} if lr_dir.is_dir() else {}
    for frame in hr:
        if frame.stem not in lr_names:
            raise UserError(f"clip {name}: LR frame {frame.stem} is missing in {lr_dir} (HR has {frame.name}); "
                            "restore it, or set data.lr=degrade to make LR from HR")
    extra = sorted(set(lr_names) - {f.stem for f in hr})
    if extra:
        raise UserError(f"clip {name}: LR frame {extra[0]} in {lr_dir} has no HR frame in {hr_dir}")
    return Clip(name, hr, [lr_names[f.stem] for f in hr])


def choose_lr(lr: str, stored_available: bool, where: str) -> bool:
    """Whether to use stored LR frames: `data.lr` = auto (when stored for this scale and protocol) | stored | degrade."""
    check_choice("data.lr", lr, LR_SOURCES)
    if lr == "stored" and not stored_available:
        raise UserError(f"data.lr=stored but {where} has no LR frames for this scale and degradation; precompute "
                        "them with datasets/prepare.py or set data.lr=auto to make LR on the fly")
    return lr != "degrade" and stored_available


class FrameClips(Dataset):
    """Items `{"lr": (T, 3, h, w), "hr": (T, 3, h*scale, w*scale), "name": str}` from frame-folder clips.

    Args:
        clips: the clips (see `Clip`).
        scale: upscale factor; HR without stored LR is cut to a multiple of it.
        degradation: HR clip -> LR, for clips without stored LR.
        num_frames: frames per item (null = the whole clip).
        patch_size: HR crop size (null = full frames); must be divisible by `scale`.
        random: training items (random window, crop and augmentation); else the first
            `num_frames` frames, uncropped, deterministic LR.
        flip, rotate, reverse: augmentations when `random` (horizontal/vertical flips,
            90-degree rotations of square patches, temporal reversal), each with p = 0.5.
        repeat: items per clip per epoch (training on few long clips).
        on_error: "raise" on an unreadable image, or "skip" its clip (counted and logged).
    """

    def __init__(self, clips: list[Clip], scale: int = 4, degradation=None, num_frames: int | None = None,
                 patch_size: int | None = None, random: bool = False, flip: bool = True, rotate: bool = True,
                 reverse: bool = True, repeat: int = 1, on_error: str = "raise"):
        check_choice("data.on_error", on_error, ON_ERROR)
        if not clips:
            raise UserError("data: no clips found; check data.root and the layout in datasets/README.md")
        if num_frames is not None and num_frames < 1:
            raise UserError(f"data.num_frames={num_frames} must be at least 1 (or null for whole clips)")
        if patch_size is not None:
            check_divisible("data.patch_size", patch_size, scale)
        if any(c.lr is None for c in clips) and degradation is None:
            raise UserError("data: clips without stored LR frames need a degradation (degradation=bicubic)")
        self.clips, self.scale, self.degradation = clips, scale, degradation
        self.num_frames, self.patch_size, self.random = num_frames, patch_size, random
        self.augment = dict(flip=flip, rotate=rotate, reverse=reverse)
        self.repeat, self.on_error = max(1, int(repeat)), on_error
        self.skipped = 0
        self._check_clips()

    def _check_clips(self) -> None:
        """Frame counts of every clip and the sizes of a spread of clips' first frames (file headers),
        so layout mistakes surface before training starts; `load` checks every item it reads too."""
        lengths = {clip.name: len(clip.hr) for clip in self.clips}
        if self.random:  # data=photos_and_videos and data=corpus set one num_frames for all their parts
            check_windows(self.num_frames, lengths, "data.train.num_frames", "training clips",
                          hint=" (data.num_frames in data=photos_and_videos, data=corpus)")
        else:
            check_windows(self.num_frames, lengths, "data.val.num_frames", "validation clips")
        step = max(1, len(self.clips) // MAX_HEADER_CHECKS)
        kept = []
        for i, clip in enumerate(self.clips):
            if i % step == 0:
                try:
                    self._check_sizes(clip, 0, image_size(clip.hr[0]),
                                      image_size(clip.lr[0]) if clip.lr is not None else None)
                except UnreadableImage as err:
                    if self.on_error == "raise":
                        raise
                    self.skipped += 1
                    log.warning("data.on_error=skip: clip %s left out: %s (%d skipped)", clip.name, err, self.skipped)
                    continue
            kept.append(clip)
        if not kept:
            raise UserError("data: every clip was skipped as unreadable (data.on_error=skip); check the files")
        self.clips = kept

    def _check_sizes(self, clip: Clip, t: int, hr_wh: tuple[int, int], lr_wh: tuple[int, int] | None) -> None:
        w, h = hr_wh
        # HR not divisible by scale is cut to a multiple of it (BasicSR's mod crop), as prepare.py does
        if lr_wh is not None and (lr_wh[0] * self.scale, lr_wh[1] * self.scale) != (w - w % self.scale,
                                                                                   h - h % self.scale):
            raise UserError(f"clip {clip.name}: LR frame {clip.lr[t].name} is {lr_wh[0]}x{lr_wh[1]} but HR frame "
                            f"{clip.hr[t].name} is {w}x{h}, not x{self.scale} of it; check scale= and the LR folder")
        if self.patch_size is not None and min(w - w % self.scale, h - h % self.scale) < self.patch_size:
            raise UserError(f"data.patch_size={self.patch_size} is larger than the {w}x{h} frames of clip "
                            f"{clip.name}; use data.train.patch_size <= {min(w, h) // self.scale * self.scale}")

    def __len__(self) -> int:
        return len(self.clips) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(index)  # ends `for item in dataset`
        index %= len(self)
        return load_or_skip(self, index, lambda i: self.load(i % len(self.clips)),
                            skippable=lambda err: isinstance(err, UnreadableImage),
                            describe=lambda i, err: f"clip {self.clips[i % len(self.clips)].name} skipped: {err}",
                            items="clips")

    def load(self, index: int) -> dict:
        clip = self.clips[index]
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()))) if self.random else None
        count = len(clip.hr) if self.num_frames is None else self.num_frames
        start = int(rng.integers(0, len(clip.hr) - count + 1)) if rng is not None else 0
        window = range(start, start + count)
        hr = to_tensor(self._read(clip, [clip.hr[t] for t in window]))
        lr = None
        if clip.lr is not None:
            lr = to_tensor(self._read(clip, [clip.lr[t] for t in window]))
        # every frame of a window has one size (_read), so its first pair stands for all
        self._check_sizes(clip, start, (hr.shape[-1], hr.shape[-2]),
                          (lr.shape[-1], lr.shape[-2]) if lr is not None else None)
        h, w = hr.shape[-2:]
        hr = hr[..., : h - h % self.scale, : w - w % self.scale]
        if rng is not None and self.patch_size is not None:
            lr, hr = paired_random_crop(lr, hr, self.patch_size, self.scale, rng)
        if lr is None:
            seed = int(rng.integers(2**62)) if rng is not None else index
            lr = degrade(self.degradation, hr.contiguous(), seed)
            lr = quantize(lr)  # as if stored: LR frames are uint8 on disk
        if rng is not None:
            lr, hr = augment_pair(lr, hr, rng, **self.augment)
        name = clip.name if rng is None else f"{clip.name}/{start}"
        return {"lr": lr.float().contiguous(), "hr": hr.float().contiguous(), "name": name}

    @staticmethod
    def _read(clip: Clip, paths: list[Path]) -> list[np.ndarray]:
        for path in paths:
            if not path.exists():
                raise UserError(f"clip {clip.name}: frame {path.name} is missing in {path.parent}; "
                                "restore it or remove the clip from the list")
        frames = [read_image(p) for p in paths]
        first = frames[0].shape
        for path, frame in zip(paths, frames):
            if frame.shape != first:
                raise UserError(f"clip {clip.name}: frame {path.name} is {frame.shape[1]}x{frame.shape[0]} but "
                                f"{paths[0].name} is {first[1]}x{first[0]}; all frames of a clip must have one size")
        return frames
