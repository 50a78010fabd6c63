"""Real video files as clips: HR = the decoded frames, LR = a degradation of HR.

`python evaluate.py data=video data.path=FILE` (or a glob such as `"clips/*.mp4"`) scores whole
videos; `python train.py data=video data.path=GLOB` trains on random windows and crops of them.
"""

import glob
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vsr.data.augment import augment_pair, paired_random_crop
from vsr.data.degradations import BicubicDegradation, check_divisible, degrade
from vsr.data.frames import ON_ERROR, check_windows, load_or_skip
from vsr.errors import UserError, check_choice
from vsr.io.images import quantize, to_tensor
from vsr.io.video import VIDEO_EXTENSIONS, iter_frames, probe, read_frames


def find_videos(path: str) -> list[Path]:
    """The files named by `path`: one file, or a glob pattern (sorted)."""
    if path is None or str(path).strip() == "":
        raise UserError("data.path is required: a video file or a glob like 'clips/*.mp4'")
    expanded = str(Path(str(path)).expanduser())
    if glob.has_magic(expanded):
        files = sorted(Path(p) for p in glob.glob(expanded, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in VIDEO_EXTENSIONS)
        if not files:
            raise UserError(f"data.path={path} matches no video file ({', '.join(VIDEO_EXTENSIONS)})")
        return files
    file = Path(expanded)
    if not file.is_file():
        raise UserError(f"data.path={path}: video file not found")
    return [file]


def clip_names(files: list[Path]) -> list[str]:
    """File stems, or paths relative to the common folder where stems repeat."""
    stems = [f.stem for f in files]
    if len(set(stems)) == len(stems):
        return stems
    root = os.path.commonpath([str(f.parent) for f in files])
    return [str(f.relative_to(root).with_suffix("")) for f in files]


def center_crop(frames: torch.Tensor, size) -> torch.Tensor:
    """Centre crop `(..., H, W)` to `size` (int or [h, w]); no-op when null or larger than the frame."""
    if size is None:
        return frames
    ch, cw = (size, size) if isinstance(size, int) else tuple(size)
    h, w = frames.shape[-2:]
    ch, cw = min(ch, h), min(cw, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[..., top:top + ch, left:left + cw]


def mod_crop(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """Drop the last rows/columns so HR size is a multiple of `scale` (BasicSR's `mod_crop`)."""
    h, w = frames.shape[-2:]
    return frames[..., : h - h % scale, : w - w % scale]


def count_frames(path: Path) -> int:
    """Decodable frame count: decord's index, else the container's (PyAV)."""
    try:
        from vsr.io.video import _decord

        return len(_decord().VideoReader(str(path)))
    except UserError:
        raise
    except Exception:
        return probe(path).num_frames


def read_window(path: Path, start: int, count: int) -> np.ndarray:
    """Frames `start .. start+count-1` as `(count, H, W, 3)` uint8 RGB: decord seeks, PyAV decodes from the start."""
    try:
        from vsr.io.video import _decord

        reader = _decord().VideoReader(str(path))
        frames = reader.get_batch(list(range(start, start + count))).asnumpy()
    except UserError:
        raise
    except Exception:
        frames = list(iter_frames(path, start + count))[start:]
        frames = np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    if len(frames) < count:
        raise UserError(f"{path}: decoded {len(frames)} of frames {start}..{start + count - 1}; corrupt or truncated video")
    return frames


class VideoClips(Dataset):
    """Clips from video files: `{"lr": (T, 3, h, w), "hr": (T, 3, h*scale, w*scale), "name": str}`.

    Evaluation (default): one clip per file, its first `max_frames` frames. Training
    (`random=True`): `num_clips` items per epoch, each a random window of `num_frames` frames
    of a random file, a random `patch_size` crop, flips, 90-degree rotations and reversal.

    Args:
        path: a video file or a glob pattern.
        scale: upscale factor; HR is cropped to a multiple of it.
        degradation: callable HR `(T, C, H, W)` -> LR; default bicubic (BI).
        max_frames: read at most this many frames per video (null = all); windows stay within them.
        crop: centre crop of HR, `S` or `[H, W]`, to bound the work (null = full frame).
        num_frames, patch_size, random, flip, rotate, reverse: training windows, crops, augmentation.
        num_clips: items per epoch when `random` (null = one per file).
        on_error: "raise" on an unreadable video, or "skip" it (counted and logged).
    """

    def __init__(self, path: str, scale: int = 4, degradation=None, max_frames: int | None = 100,
                 crop: int | list[int] | None = None, num_frames: int | None = None, patch_size: int | None = None,
                 random: bool = False, flip: bool = True, rotate: bool = True, reverse: bool = True,
                 num_clips: int | None = None, on_error: str = "raise"):
        self.files = find_videos(path)
        self.names = clip_names(self.files)
        self.scale = scale
        self.degradation = degradation if degradation is not None else BicubicDegradation(scale)
        if not callable(self.degradation):
            raise UserError(f"data.degradation must build a callable HR -> LR, got {type(self.degradation).__name__}")
        if max_frames is not None and max_frames < 1:
            raise UserError(f"data.max_frames={max_frames} must be at least 1 (or null for all frames)")
        if num_frames is not None and num_frames < 1:
            raise UserError(f"data.num_frames={num_frames} must be at least 1 (or null for whole clips)")
        if patch_size is not None:
            check_divisible("data.patch_size", patch_size, scale)
        check_choice("data.on_error", on_error, ON_ERROR)
        self.max_frames = max_frames
        self.crop = crop
        self.num_frames, self.patch_size, self.random = num_frames, patch_size, random
        self.augment = dict(flip=flip, rotate=rotate, reverse=reverse)
        self.num_clips = num_clips if num_clips is not None else len(self.files)
        self.on_error, self.skipped = on_error, 0
        self._lengths: dict[int, int] = {}  # file index -> frames its windows may use
        if random and num_frames is not None:
            self._check_windows()

    def _check_windows(self) -> None:
        """Count every file's frames now, so videos shorter than a training window are one error
        before training instead of a DataLoader worker's traceback mid-epoch."""
        if self.max_frames is not None and self.max_frames < self.num_frames:
            raise UserError(f"data.train.num_frames={self.num_frames} is more than data.max_frames={self.max_frames}, "
                            "the frames read per video; raise data.max_frames or lower data.train.num_frames")
        for index, file in enumerate(self.files):
            try:
                total = count_frames(file)
            except UserError:
                if self.on_error == "raise":
                    raise
                continue  # unreadable: skipped (and counted) when an item needs it
            self._lengths[index] = total if self.max_frames is None else min(total, self.max_frames)
        check_windows(self.num_frames, {str(self.files[i]): n for i, n in self._lengths.items()},
                      "data.train.num_frames", "videos")

    def __len__(self) -> int:
        return self.num_clips if self.random else len(self.files)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(index)  # ends `for item in dataset`
        index %= len(self)
        return load_or_skip(self, index,
                            lambda i: self._train_item() if self.random else self._clip(i % len(self.files)),
                            # option mistakes ("data.patch_size=...: ...") are never skipped, only unreadable files
                            skippable=lambda err: not str(err).startswith("data."),
                            describe=lambda i, err: str(err), items="videos")

    def _clip(self, index: int) -> dict:
        frames = read_frames(self.files[index], self.max_frames)  # (T, H, W, 3) uint8
        hr = to_tensor(frames)
        hr = mod_crop(center_crop(hr, self.crop), self.scale).contiguous()
        h, w = hr.shape[-2:]
        if h < self.scale or w < self.scale:
            raise UserError(f"{self.files[index]}: frames of {w}x{h} are too small for scale={self.scale}")
        if self.num_frames is not None:
            hr = hr[: self.num_frames]
        lr = degrade(self.degradation, hr, index)
        lr = quantize(lr)  # on the 8-bit grid, as a stored LR video (and BasicSR's LR PNGs)
        return {"lr": lr.float(), "hr": hr, "name": self.names[index]}

    def _train_item(self) -> dict:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        index = int(rng.integers(len(self.files)))
        file = self.files[index]
        if index not in self._lengths:
            total = count_frames(file)
            self._lengths[index] = total if self.max_frames is None else min(total, self.max_frames)
        total = self._lengths[index]
        count = self.num_frames or total
        start = int(rng.integers(0, total - count + 1))
        hr = to_tensor(read_window(file, start, count))
        hr = mod_crop(center_crop(hr, self.crop), self.scale)
        h, w = hr.shape[-2:]
        if self.patch_size is not None:
            if min(h, w) < self.patch_size:
                raise UserError(f"data.patch_size={self.patch_size} is larger than the {w}x{h} frames of {file}; "
                                f"use data.train.patch_size <= {min(h, w)}")
            _, hr = paired_random_crop(None, hr, self.patch_size, self.scale, rng)
        lr = degrade(self.degradation, hr.contiguous(), int(rng.integers(2**62)))
        lr = quantize(lr)
        lr, hr = augment_pair(lr, hr, rng, **self.augment)
        return {"lr": lr.float().contiguous(), "hr": hr.contiguous(), "name": f"{self.names[index]}/{start}"}
