"""Will an upscale fit in memory? The output frame size and a peak-memory estimate, checked before
the first frame: `outscale=1000` used to run for minutes until the kernel's OOM killer ended it.

The estimate counts the large buffers of one model call (fp32): the float output frames it yields
(twice: the model's output and its resized, filtered copy; with denoise= three times, and the
chunk's two neighbouring frames too) and the model's feature maps (trunk width
x the largest pass's input, per tile, plus the upsampler's at the output resolution; recurrent
models reconstruct one frame at a time but keep a hidden state of each whole frame of the window).
Estimates against measured peaks: docs/reliability.md.
"""

import math
from pathlib import Path

from torch import nn

from vsr.errors import UserError

FLOAT = 4  # bytes per value: frames and features are fp32 on the CPU
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
# Tried in order when a run does not fit: the first that does is named in the error.
AUTO_TILES = (512, 256, 128, 64)  # tile=auto: the largest that fits, when whole frames do not
SUGGESTIONS = (("tile=256", {"tile": 256}), ("tile=64", {"tile": 64}), ("tile=64 chunk=1", {"tile": 64, "chunk": 1}))


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):  # missing file, or "max" (no limit)
        return None


def meminfo_available() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), in bytes."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable (psutil where there is no /proc), lowered to
    the room left under a cgroup limit (containers are killed at theirs); None when nothing says."""
    free = meminfo_available()
    if free is None:
        try:
            import psutil

            free = psutil.virtual_memory().available
        except ImportError:
            return None
    for limit_file, usage_file in CGROUP_FILES:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None:
            free = min(free, max(0, limit - usage))
    return free


def feature_width(model: nn.Module) -> int:
    """Channels of the model's first convolution: the trunk width of vsrlab's generators (3 without one)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.out_channels if conv is not None else 3


def peak_bytes(upscaler, width: int, height: int, tile: int | None = None,
               chunk: int | None = None) -> tuple[int, int]:
    """`(output frames, model features)`: the bytes one model call holds for `width` x `height` input
    frames (module docstring), with the upscaler's tile and chunk or the ones given."""
    tile = upscaler.tile if tile is None else tile
    chunk = upscaler.fit_chunk(width, height) if chunk is None else chunk
    out_w, out_h = upscaler.output_size(width, height)
    s = upscaler.scale
    lr = max(width * height, out_w * out_h / s**2)  # the largest model input: the last of chained passes
    denoise = upscaler.denoise > 0  # the kept frames' two neighbours are upscaled too, and the filter's sums held
    outputs = (3 if denoise else 2) * (chunk + 2 * denoise) * 3 * FLOAT * lr * s**2
    side = tile + 2 * upscaler.tile_pad
    area = min(side * side, lr) if tile > 0 else lr
    channel = feature_width(upscaler.model) * FLOAT
    reconstruction = channel * area * (2 + s**2)  # a frame's trunk input and output, upsampler at s x s
    if upscaler.temporal:  # frames reconstruct one by one; the backward pass keeps every frame's hidden state
        features = reconstruction + (chunk + 2 * upscaler.overlap + 1) * channel * lr
    else:  # the chunk's frames run as one batch
        features = chunk * reconstruction
    return int(outputs), int(features)


def needed_bytes(upscaler, width: int, height: int, **options) -> int:
    """Host memory needed: everything on the CPU; only the output frames beside a GPU."""
    outputs, features = peak_bytes(upscaler, width, height, **options)
    return outputs + (features if upscaler.device.type == "cpu" else 0)


def choose_tile(upscaler, width: int, height: int) -> str | None:
    """tile=auto: whole frames when they fit in the memory available now, else the largest of
    `AUTO_TILES` that does, set on `upscaler`; returns a line saying which, or None (whole frames,
    or nothing fits and `check_fits` refuses)."""
    free = available_bytes()
    whole = needed_bytes(upscaler, width, height, tile=0)
    if free is None or whole <= free:
        return None
    for tile in AUTO_TILES:
        if needed_bytes(upscaler, width, height, tile=tile) <= free:
            upscaler.tile = tile
            out_w, out_h = upscaler.output_size(width, height)  # the estimate covers every pass to this size
            return (f"tile=auto: {width}x{height} -> {out_w}x{out_h} on whole frames would need about {gib(whole)} "
                    f"of memory and {gib(free)} is available, so the model runs on {tile}-pixel tiles (same output, "
                    "a little slower)")
    return None


def check_fits(upscaler, width: int, height: int) -> None:
    """Raise a one-line UserError naming the option to change when upscaling `width` x `height`
    frames cannot fit in the memory available now."""
    free = available_bytes()
    needed = needed_bytes(upscaler, width, height)
    if free is None or needed <= free:
        return
    out_w, out_h = upscaler.output_size(width, height)
    raise UserError(f"{width}x{height} -> {out_w}x{out_h} needs about {gib(needed)} of memory at its peak and "
                    f"{gib(free)} is available: {advice(upscaler, width, height, free)}")


def advice(upscaler, width: int, height: int, free: int) -> str:
    """The first smaller tile / chunk that fits, else a smaller output (outscale= or fit=)."""
    for words, options in SUGGESTIONS:
        if is_smaller(upscaler, options) and needed_bytes(upscaler, width, height, **options) <= free:
            return f"pass {words} (runs the model on smaller pieces)"
    return "ask for a smaller output with a lower outscale= or fit=WIDTHxHEIGHT (even tile=64 chunk=1 would not fit)"


def is_smaller(upscaler, options: dict) -> bool:
    """Whether `options` cut the run's tile or chunk (and raise neither)."""
    tile, chunk = upscaler.tile or math.inf, upscaler.chunk  # tile=0: whole frames
    new_tile, new_chunk = options.get("tile", tile), options.get("chunk", chunk)
    return new_tile <= tile and new_chunk <= chunk and (new_tile, new_chunk) != (tile, chunk)


def gib(size: float) -> str:
    return f"{size / 2**30:.1f} GB"
