"""Real video files as evaluation clips: HR = the decoded frames, LR = a degradation of HR.

`python evaluate.py data=video data.path=FILE` (or a glob such as `"clips/*.mp4"`).
"""

import glob
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vsr.data.degradations import BicubicDegradation
from vsr.errors import UserError
from vsr.io.video import VIDEO_EXTENSIONS, read_frames


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


class VideoClips(Dataset):
    """One clip per video file: `{"lr": (T, 3, h, w), "hr": (T, 3, h*scale, w*scale), "name": str}`.

    Args:
        path: a video file or a glob pattern.
        scale: upscale factor; HR is cropped to a multiple of it.
        degradation: callable HR `(T, C, H, W)` -> LR; default bicubic (BI).
        max_frames: read at most this many frames per video (null = all).
        crop: centre crop of HR, `S` or `[H, W]`, to bound the work (null = full frame).
    """

    def __init__(self, path: str, scale: int = 4, degradation=None, max_frames: int | None = 100,
                 crop: int | list[int] | None = None):
        self.files = find_videos(path)
        self.names = clip_names(self.files)
        self.scale = scale
        self.degradation = degradation if degradation is not None else BicubicDegradation(scale)
        if not callable(self.degradation):
            raise UserError(f"data.degradation must build a callable HR -> LR, got {type(self.degradation).__name__}")
        if max_frames is not None and max_frames < 1:
            raise UserError(f"data.max_frames={max_frames} must be at least 1 (or null for all frames)")
        self.max_frames = max_frames
        self.crop = crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        frames = read_frames(self.files[index], self.max_frames)  # (T, H, W, 3) uint8
        hr = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        hr = mod_crop(center_crop(hr, self.crop), self.scale).contiguous()
        h, w = hr.shape[-2:]
        if h < self.scale or w < self.scale:
            raise UserError(f"{self.files[index]}: frames of {w}x{h} are too small for scale={self.scale}")
        lr = self.degradation(hr)
        return {"lr": lr.float(), "hr": hr, "name": self.names[index]}
