"""Training windows for frame interpolation cut from video files held in memory.

The interpolation module cuts triplets (two neighbours and the held-out frame between them) out of
any clip batch `{"hr": (B, T, 3, H, W)}`, so `data=sample` and `data=video` work as they are.
`VideoWindows` is the faster choice for real footage: it decodes each file once (optionally also
at 1/2 size, which halves the motion in pixels) and then cuts random windows and crops in memory.
"""

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from vsr.data.video import clip_names, find_videos
from vsr.errors import UserError
from vsr.io.video import read_frames


class VideoWindows(Dataset):
    """Random windows `{"hr": (T, 3, P, P), "lr": same, "name"}` of the frames of video files.

    Args:
        path: a video file or a glob.
        num_frames: frames per window (T >= 3).
        patch_size: square crop P.
        num_clips: items per epoch.
        max_frames: frames decoded per file (null = all).
        downscales: the frames are also kept at these integer reductions (1 = as decoded); each
            window picks one at random, so the model sees a range of motion magnitudes.
        seed: base seed (each item also draws from torch's generator, seeded by train.py).
        split, scale, degradation: accepted so the class drops into a `data.train` slot of any
            data config; unused (interpolation needs no low-resolution input).
    """

    def __init__(self, path: str, num_frames: int = 5, patch_size: int = 128, num_clips: int = 1000,
                 max_frames: int | None = None, downscales: tuple[int, ...] = (1,), seed: int = 0,
                 split: str | None = None, scale: int | None = None, degradation=None):
        if num_frames < 3:
            raise UserError(f"data.train.num_frames={num_frames}: interpolation windows need at least 3 frames")
        self.files = find_videos(path)
        self.names = clip_names(self.files)
        self.num_frames, self.patch_size, self.num_clips, self.seed = num_frames, patch_size, num_clips, seed
        self.frames: list[tuple[str, torch.Tensor]] = []  # (name, (N, 3, H, W) uint8)
        for file, name in zip(self.files, self.names):
            video = torch.from_numpy(read_frames(file, max_frames)).permute(0, 3, 1, 2).contiguous()
            for factor in downscales:
                small = video if factor == 1 else self._shrink(video, int(factor))
                if len(small) < num_frames or min(small.shape[-2:]) < patch_size:
                    raise UserError(f"{file} (1/{factor} size): {len(small)} frames of {small.shape[-1]}x"
                                    f"{small.shape[-2]} cannot give {num_frames}-frame windows of {patch_size} px")
                self.frames.append((f"{name}@1/{factor}", small))

    @staticmethod
    def _shrink(video: torch.Tensor, factor: int) -> torch.Tensor:
        out = [F.interpolate(v.float()[None], scale_factor=1 / factor, mode="area")[0].round().to(torch.uint8)
               for v in video]
        return torch.stack(out)

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, index, int(torch.randint(0, 2**31, ()))])
        name, video = self.frames[int(rng.integers(len(self.frames)))]
        n, _, h, w = video.shape
        start = int(rng.integers(0, n - self.num_frames + 1))
        top, left = int(rng.integers(0, h - self.patch_size + 1)), int(rng.integers(0, w - self.patch_size + 1))
        clip = video[start:start + self.num_frames, :, top:top + self.patch_size, left:left + self.patch_size]
        clip = clip.float() / 255
        if rng.random() < 0.5:
            clip = clip.flip(-1)
        if rng.random() < 0.5:
            clip = clip.flip(-2)
        if rng.random() < 0.5:
            clip = clip.transpose(-1, -2)
        if rng.random() < 0.5:
            clip = clip.flip(0)  # time reversed
        clip = clip.contiguous()
        return {"hr": clip, "lr": clip, "name": f"{name}/{start}"}
