"""PNG plots of an evaluation: per-frame PSNR, per-pair flicker, and an LR | bicubic | SR | GT crop strip."""

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vsr.io.atomic import write_atomic  # noqa: E402


def safe_name(name: str) -> str:
    """A clip name usable as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "clip"


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def plot_curves(path: Path, title: str, panels: dict[str, dict[str, torch.Tensor | None]], start: int = 0) -> bool:
    """One panel per metric (`panels[label][system] = values`), x = frame index from `start`."""
    panels = {label: {s: v for s, v in curves.items() if v is not None and v.numel() > 0}
              for label, curves in panels.items()}
    panels = {label: curves for label, curves in panels.items() if curves}
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), squeeze=False)
    for ax, (label, curves) in zip(axes[:, 0], panels.items()):
        for system, values in curves.items():
            v = values.double().numpy()
            v = np.where(np.isinf(v), np.nan, v)  # identical frames: no finite PSNR to draw
            ax.plot(np.arange(start, start + len(v)), v, marker=".", label=system)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("frame")
    _save(fig, path)
    return True


def crop_box(hr_hw: tuple[int, int], size: int, scale: int) -> tuple[int, int, int]:
    """Top, left and size of a centred square crop, aligned to the LR grid."""
    h, w = hr_hw
    size = max(scale, min(size, h, w) // scale * scale)
    top = (h - size) // 2 // scale * scale
    left = (w - size) // 2 // scale * scale
    return top, left, size


def plot_strip(path: Path, title: str, panels: dict[str, torch.Tensor], scale: int, size: int) -> None:
    """Side-by-side crops; `panels` holds frames `(3, H, W)` (LR `(3, h, w)` is shown nearest-upscaled)."""
    first_hr = next(p for label, p in panels.items() if label != "LR")
    top, left, size = crop_box(first_hr.shape[-2:], size, scale)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.7))
    for ax, (label, frame) in zip(np.atleast_1d(axes), panels.items()):
        if label == "LR":
            frame = frame[:, top // scale:(top + size) // scale, left // scale:(left + size) // scale]
            frame = frame.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
        else:
            frame = frame[:, top:top + size, left:left + size]
        image = frame.permute(1, 2, 0).numpy()
        ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
