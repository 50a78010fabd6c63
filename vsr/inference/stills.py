"""upscale.py beyond whole videos: single images, chosen frames of a video (stills), and the
`interpolate=N` option's checks and interpolator.

`python upscale.py input=photo.png output=photo_x4.png weights=DIR`  (PNG, JPEG, WebP; BMP/TIFF read)
`python upscale.py input=clip.mp4 stills=[120,480] output=DIR weights=DIR`
  -> DIR/clip_frame000120.png, DIR/clip_frame000480.png: each frame upscaled in the middle of a window of
     `chunk + 2 * overlap` neighbouring frames (the temporal context one streamed chunk has).
"""

import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from vsr.errors import UserError
from vsr.inference.memory import check_fits
from vsr.inference.progress import Progress
from vsr.io import images as io_images
from vsr.io.claim import OutputClaim
from vsr.io.images import to_tensor, to_uint8
from vsr.options import UpscaleOptions

IMAGE_INPUTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".webp")
MAX_INTERPOLATE = 16


def check_interpolate(value) -> int:
    """`interpolate=N`: a whole number 1..16 (1 = off, 2 doubles the frame rate)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTERPOLATE:
        raise UserError(f"interpolate={value} must be a whole number from 2 to {MAX_INTERPOLATE} "
                        "(interpolate=2 doubles the frame rate; 1 or leaving it out = off)")
    return value


def is_image(path) -> bool:
    return path is not None and Path(str(path)).suffix.lower() in IMAGE_INPUTS


def make_interpolator(cfg: UpscaleOptions, factor: int, device):
    """The `FrameInterpolator` for `interpolate=factor` (None when factor is 1)."""
    if factor == 1:
        return None
    from vsr.interpolation.stream import FrameInterpolator, load_interpolator

    model, _ = load_interpolator(cfg.interpolator, device)
    return FrameInterpolator(model, factor, float(cfg.cut_threshold), device)


def _check_new_file(target: Path, overwrite: bool) -> None:
    if target.exists() and target.is_dir():
        raise UserError(f"output={target} is a directory; give a file name")
    if target.exists() and not overwrite:
        raise UserError(f"output={target} already exists; pass overwrite=true to replace it")


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """`(RGB uint8 (H, W, 3), alpha uint8 (H, W) or None)`; grey images become RGB, 16-bit become 8-bit."""
    try:
        image = io_images.read_image(path, alpha=True)
    except ValueError as err:
        raise UserError(f"input={path}: {err}") from None
    if image is None:
        raise UserError(f"input={path}: not a readable image (or a format OpenCV cannot decode)")
    return image


def write_image(claim: OutputClaim, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write the claimed file atomically (its hidden partial file, then rename); JPEG/WebP at quality 95."""
    import cv2

    path = claim.path
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is not None and path.suffix.lower() in (".png", ".webp"):
        image = np.dstack((image, alpha))
    params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
              ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}.get(path.suffix.lower(), [])
    tmp = claim.partial
    try:
        if not cv2.imwrite(str(tmp), image, params):
            raise UserError(f"output={path}: the image could not be encoded")
        claim.publish(tmp)
    except OSError as err:
        raise UserError(f"output={path}: cannot write there ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)


def upscale_image(cfg: UpscaleOptions, factor: int) -> dict:
    """input=IMAGE output=IMAGE: the image as a one-frame clip through the model (alpha resized bicubic)."""
    from vsr.inference import filters
    from vsr.inference.video import flag, make_upscaler

    source, target = str(cfg.input), cfg.output
    if factor != 1:
        raise UserError(f"input={source} is an image: interpolate= applies to videos only (drop interpolate)")
    if cfg.stills is not None:
        raise UserError(f"input={source} is an image: stills= picks frames of a video (drop stills)")
    if not target:
        raise UserError(f"output=FILE is required, e.g. output={Path(source).stem}_x4.png (.png .jpg .webp)")
    src, dst = Path(source), Path(target)
    if not src.is_file():
        raise UserError(f"input={source}: file not found")
    if dst.suffix.lower() not in IMAGE_OUTPUTS:
        raise UserError(f"output={target}: an image input writes an image; use one of {', '.join(IMAGE_OUTPUTS)}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise UserError(f"output={target} is the input file; choose a different output path")
    overwrite, progress = flag(cfg, "overwrite"), flag(cfg, "progress")
    _check_new_file(dst, overwrite)
    with OutputClaim(dst, overwrite) as claim:  # held until the file is in place: one run per output
        rgb, alpha = read_image(src)
        upscaler = make_upscaler(cfg, (rgb.shape[1], rgb.shape[0]))
        check_fits(upscaler, rgb.shape[1], rgb.shape[0])
        start = time.perf_counter()
        clip = to_tensor([rgb])
        bar = Progress(1, "image", unit="image", enabled=progress)  # a large image times runtimes first: said there
        upscaler.report_to(bar)
        try:
            with bar.piece(1):
                out = to_uint8(upscaler.upscale_clip(clip))[0]
        finally:
            bar.close()
        if alpha is not None:
            a = to_tensor([alpha[..., None]])
            alpha = to_uint8(filters.resize(a.expand(-1, 3, -1, -1), out.shape[:2]))[0, ..., 0]
        write_image(claim, out, alpha)
    seconds = time.perf_counter() - start
    print(f"upscaled image {rgb.shape[1]}x{rgb.shape[0]} -> {out.shape[1]}x{out.shape[0]} in {seconds:.1f} s, "
          f"{upscaler.device} {upscaler.precision}: {dst}")
    summary = {"output": str(dst), "input_size": [rgb.shape[1], rgb.shape[0]],
               "output_size": [out.shape[1], out.shape[0]], "seconds": round(seconds, 3),
               "runtime": upscaler.runtime.ran, "model_seconds": round(upscaler.model_seconds, 3)}
    print(json.dumps(summary))
    return summary


def check_stills(value, num_frames: int, source) -> list[int]:
    """`stills=[120,480]` (or one number): distinct frame indices within the video, sorted."""
    values = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(
        value, str) else [value]
    if not values:
        raise UserError("stills=[] names no frame; e.g. stills=[120,480] (0-based frame indices)")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise UserError(f"stills={value}: {v} is not a frame index (whole numbers from 0, e.g. stills=[120,480])")
    beyond = [v for v in values if v >= num_frames]
    if beyond:
        raise UserError(f"stills={value}: input={source} has {num_frames} frames (0..{num_frames - 1}); "
                        f"{', '.join(map(str, beyond))} is beyond its end")
    return sorted(set(values))


def upscale_stills(cfg: UpscaleOptions, factor: int) -> dict:
    """input=VIDEO stills=[i, j, ...] output=DIR: those frames upscaled with temporal context, as PNGs."""
    from vsr.inference.video import flag, make_upscaler
    from vsr.io.video import count_checked, probe, stream_frames

    source, target = cfg.input, cfg.output
    if factor != 1:
        raise UserError("stills= writes frames of the input video; it does not take interpolate= (drop one)")
    if not source:
        raise UserError("input=VIDEO is required, e.g. python upscale.py input=clip.mp4 stills=[120,480] output=DIR")
    if not target:
        raise UserError("output=DIR is required with stills=: the folder the PNG frames are written to")
    src, folder = Path(source), Path(target)
    if not src.is_file():
        raise UserError(f"input={source}: file not found")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output={target} is a file; stills= writes PNGs into a folder (output=DIR)")
    info = probe(src)
    wanted = check_stills(cfg.stills, info.num_frames, source)
    files = {i: folder / f"{src.stem}_frame{i:06d}.png" for i in wanted}
    overwrite, progress = flag(cfg, "overwrite"), flag(cfg, "progress")
    for file in files.values():
        _check_new_file(file, overwrite)
    with ExitStack() as held:  # every still claimed before the model runs, until it is in place
        claims = {i: held.enter_context(OutputClaim(file, overwrite)) for i, file in files.items()}
        upscaler = make_upscaler(cfg, (info.width, info.height))
        check_fits(upscaler, info.width, info.height)
        half = upscaler.chunk // 2 + upscaler.overlap if upscaler.temporal else 0
        start = time.perf_counter()
        bar = Progress(len(wanted), "stills", unit="still", enabled=progress)
        held.callback(bar.close)
        upscaler.report_to(bar)  # a still's window advances it frame by frame, like a video's
        reader = "pyav" if info.rotation and cfg.reader == "auto" else cfg.reader
        frames = count_checked(stream_frames(src, reader), info.num_frames, src)
        buffer: dict[int, np.ndarray] = {}
        pending = list(wanted)
        last = max(wanted)

        def flush(available_to: int) -> None:
            while pending and (pending[0] + half <= available_to or available_to == info.num_frames - 1):
                i = pending.pop(0)
                lo, hi = max(0, i - half), min(available_to, i + half)
                clip = to_tensor([buffer[k] for k in range(lo, hi + 1)])
                with bar.piece(1):
                    still = to_uint8(upscaler.upscale_clip(clip, slice(i - lo, i - lo + 1)))[0]
                write_image(claims[i], still)
                bar.note(f"still {len(wanted) - len(pending)}/{len(wanted)}: frame {i} -> {files[i]}")

        for index, frame in enumerate(frames):
            if index > last + half:
                break
            buffer[index] = frame
            for k in [k for k in buffer if k < (pending[0] - half if pending else index)]:
                del buffer[k]
            flush(index)
        flush(info.num_frames - 1)
    seconds = time.perf_counter() - start
    print(f"wrote {len(files)} stills of {src} ({', '.join(map(str, wanted))}) upscaled with up to {half} frames "
          f"of context each side in {seconds:.1f} s: {folder}", file=sys.stdout)
    summary = {"output": str(folder), "stills": [str(f) for f in files.values()], "seconds": round(seconds, 3),
               "runtime": upscaler.runtime.ran, "model_seconds": round(upscaler.model_seconds, 3),
               "computed_frames": upscaler.computed_frames}
    print(json.dumps(summary))
    return summary
