"""Images and frames in memory: reading an image file, and uint8 frames <-> float clips."""

from pathlib import Path

import numpy as np
import torch


def read_image(path: str | Path, alpha: bool = False):
    """An image file as uint8 RGB `(H, W, 3)`, or None when it cannot be read (missing, empty, corrupt).

    `alpha=False` (training data): OpenCV's colour decode (EXIF orientation applied, grey and 16-bit
    converted, alpha dropped). `alpha=True` (stills to upscale): `(rgb, alpha (H, W) or None)` as stored
    (no EXIF turn), 16-bit rounded to 8; other bit depths raise ValueError.
    """
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None or not data.size:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED if alpha else cv2.IMREAD_COLOR)
    if image is None:
        return None
    if not alpha:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257).round().astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"{image.dtype} pixels are not supported (8 or 16 bits per channel)")
    if image.ndim == 2:
        image = image[..., None]
    mask = image[..., 3] if image.shape[2] == 4 else None
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb), mask


def to_tensor(frames) -> torch.Tensor:
    """uint8 `(H, W, 3)` arrays (a list, or one `(T, H, W, 3)` array; or float `(3, H, W)` tensors) -> float
    clip `(T, 3, H, W)` in [0, 1]."""
    if isinstance(frames[0], torch.Tensor):
        return torch.stack(frames).float()
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255)


def to_frames(clip: torch.Tensor) -> list[np.ndarray]:
    """float clip `(T, 3, H, W)` -> uint8 `(H, W, 3)` frames (rounded). Works in place on `clip`
    (clamped, scaled, rounded) one frame at a time: a float copy of a 20-frame 720p chunk costs more
    than encoding a frame, and a frame's passes stay in the cache (experiments/benchmarks.md)."""
    t, c, h, w = clip.shape
    frames = torch.empty((t, h, w, c), dtype=torch.uint8)
    with torch.inference_mode():  # model outputs are inference tensors: in-place only in this mode
        for frame, out in zip(clip, frames):
            out.copy_(frame.clamp_(0, 1).mul_(255).round_().permute(1, 2, 0))
    return list(frames.numpy())


def to_uint8(clip: torch.Tensor) -> np.ndarray:
    """float clip `(T, 3, H, W)` -> uint8 frames `(T, H, W, 3)` (clamped to [0, 1], rounded), a copy."""
    return (clip.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Float frames on the 8-bit grid, as if stored as uint8 and read back (LR PNGs, a stored LR video)."""
    return (x.clamp(0, 1) * 255).round() / 255
