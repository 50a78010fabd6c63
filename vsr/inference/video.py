"""upscale.py's job: check paths, stream a video file through an `Upscaler`, write it atomically."""

import json
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsr.errors import UserError, check_choice, check_flag, check_number
from vsr.inference.ensemble import check_size
from vsr.inference.memory import check_fits, choose_tile
from vsr.inference.progress import Progress

# the shipped presets: where they are and how they run (imported from here by tests and experiments too)
from vsr.inference.shipped import (  # noqa: F401
    DEFAULT_WEIGHTS,
    SHIPPED,
    SHIPPED_FACTORS,
    auto_ensemble,
    shipped_factors,
)
from vsr.inference.upscaler import Upscaler, parse_fit
from vsr.io.claim import OutputClaim
from vsr.io.video import count_checked, probe, scan_frames, stream_frames
from vsr.io.writer import OUTPUT_EXTENSIONS, VideoWriter, check_encoder_options
from vsr.options import UpscaleOptions, options


def wanted_scale(cfg: UpscaleOptions, size: tuple[int, int] | None) -> float | None:
    """The output/input ratio asked for: `outscale=`/`scale=`, or what `fit=` needs for an input of `size`."""
    scale = target_scale(cfg)
    if scale is not None or not cfg.fit or size is None:
        return scale
    fit = parse_fit(cfg.fit)
    assert fit is not None  # fit= is set
    box_w, box_h = fit
    return min(box_w / size[0], box_h / size[1])


def choose_factor(factors, wanted: float | None) -> int:
    """The smallest factor that reaches `wanted` (less computed and thrown away), else the largest;
    x4 when nothing is asked."""
    if wanted is None:
        return 4
    reaching = [f for f in sorted(factors) if f >= wanted - 1e-9]
    return reaching[0] if reaching else max(factors)


def weights_dir(cfg: UpscaleOptions, size: tuple[int, int] | None = None) -> str:
    """`weights=`, or the shipped model `shipped=` names (default: `default`) at the factor
    `choose_factor` picks for an input of `size` (width, height)."""
    if cfg.weights:
        return cfg.weights
    preset = cfg.shipped
    check_choice("shipped", preset, tuple(SHIPPED))
    if not (SHIPPED[preset] / "model.json").is_file():
        raise UserError(f"no weights= given and the shipped {preset} model is missing ({SHIPPED[preset]}; it ships "
                        "in the source tree): pass weights=DIR, an export directory made by `python export.py "
                        "checkpoint=RUN/checkpoints/last.ckpt output_dir=DIR` (or checkpoint=RealESRGAN_x4plus.pth)")
    factors = shipped_factors(preset)
    return str(factors[choose_factor(factors, wanted_scale(cfg, size))])


def model_name(cfg: UpscaleOptions) -> str:
    """How the summary names the model: the weights= folder, or the shipped preset."""
    return str(cfg.weights) if cfg.weights else f"the shipped {cfg.shipped} model"


def ensemble_size(cfg: UpscaleOptions, size: tuple[int, int] | None = None) -> int:
    """`ensemble=`, where `auto` is the setting of the model that runs (`auto_ensemble`: the
    setting a shipped model was measured with, also when weights= names its folder: 1 for all of them)."""
    ensemble = cfg.ensemble
    if ensemble != "auto":
        return check_size(ensemble, auto="as the model was measured: 1 for every shipped model")
    return auto_ensemble(weights_dir(cfg, size))


def flag(cfg: UpscaleOptions, option: str) -> bool:
    """A true/false option of upscale.py (`overwrite=no` must not count as true)."""
    return check_flag(option, getattr(cfg, option))


def encoder_threads(cfg: UpscaleOptions, device) -> int:
    """`encoder_threads=`; `auto` beside a CPU model: the model's thread count. x264's threads are
    slice threads here (`VideoWriter`): they encode each frame together and finish it before the
    next model call, so they never take cores from the model's threads (faster than one thread for
    slightly larger files: experiments/benchmarks.md). Beside a GPU: x264's choice (0)."""
    threads = cfg.encoder_threads
    if threads == "auto":
        return torch.get_num_threads() if device.type == "cpu" else 0
    check_number("encoder_threads", threads, 0, 64, integer=True, hint=" (0: x264 chooses) or auto")
    return int(threads)


def check_paths(source: str | None, target: str | None, overwrite: bool) -> tuple[Path, Path]:
    """Validate input/output before any work; raise a one-line UserError for each mistake."""
    if not source:
        raise UserError("input=VIDEO is required, e.g. python upscale.py input=clip.mp4 output=clip_x4.mp4")
    if not target:
        raise UserError("output=FILE is required, e.g. output=clip_x4.mp4 (.mp4 .mov .mkv .m4v .avi)")
    src, dst = Path(source), Path(target)
    if not src.is_file():
        raise UserError(f"input={source}: file not found")
    if dst.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise UserError(f"output={target}: unsupported extension; use one of {', '.join(OUTPUT_EXTENSIONS)}")
    if dst.resolve() == src.resolve() or (dst.exists() and dst.samefile(src)):
        raise UserError(f"output={target} is the input file; choose a different output path")
    if dst.exists() and not overwrite:
        raise UserError(f"output={target} already exists; pass overwrite=true to replace it")
    if dst.exists() and dst.is_dir():
        raise UserError(f"output={target} is a directory; give a file name such as {target}/out.mp4")
    return src, dst


def target_scale(cfg: UpscaleOptions) -> float | None:
    """`outscale`, or `scale` (2, 3, 4, 8) as its alias; both given must agree."""
    scale, outscale = cfg.scale, cfg.outscale
    if scale is not None:
        from vsr import SUPPORTED_SCALES

        if scale not in SUPPORTED_SCALES:
            raise UserError(f"scale={scale} is not supported; choose one of: "
                            f"{', '.join(map(str, SUPPORTED_SCALES))} (or outscale=FACTOR for any factor)")
        if outscale is not None and float(outscale) != float(scale):
            raise UserError(f"scale={scale} and outscale={outscale} disagree; give one of them")
        return float(scale)
    return outscale


def make_upscaler(cfg: UpscaleOptions | Mapping[str, Any], size: tuple[int, int] | None = None) -> Upscaler:
    """The `Upscaler` upscale.py's options describe for an input of `size` (width, height): weights=,
    or the shipped default model at the smallest factor that reaches the requested size."""
    cfg = options(UpscaleOptions, cfg)
    tile = cfg.tile
    upscaler = Upscaler.from_dir(
        weights_dir(cfg, size), chunk=cfg.chunk, overlap=cfg.overlap,
        tile=0 if tile == "auto" else tile,
        tile_pad=cfg.tile_pad, device=cfg.device,
        precision=cfg.precision, denoise=cfg.denoise,  # "auto": the folder's setting (Upscaler resolves it)
        sharpen=cfg.sharpen, color_match=flag(cfg, "color_match"),
        outscale=target_scale(cfg), fit=cfg.fit, runtime=cfg.runtime,
        ensemble=ensemble_size(cfg, size))
    if tile == "auto" and size is not None:
        chosen = choose_tile(upscaler, *size)
        if chosen:
            print(chosen, file=sys.stderr)
    return upscaler


def frames_lost(info) -> int:
    """Frames the stream's duration accounts for beyond those in the file.

    Containers without a frame count (MKV, WebM) are counted by decoding, so a truncated or partly
    corrupt one just looks shorter; its recorded duration still tells how long it was. Only a
    container's duration (which covers its audio too) is allowed one frame of rounding.
    """
    slack = 0 if info.duration_exact else 1
    if not info.duration_frames or info.duration_frames - info.num_frames <= slack:
        return 0
    return info.duration_frames - info.num_frames


def scan_input(src: Path, info, rate: Fraction, factor: int) -> tuple[list[int] | None, Fraction, list[int]]:
    """Decode the input once before the model runs: refuse a file that has fewer decodable frames
    than it declares, and return the output frames' times when the input's are not a constant
    rate (`None` when they are), their time base, and the frames the decoder had to conceal
    errors in."""
    scan = scan_frames(src)
    reason = f" ({scan.error})" if scan.error else ""
    if scan.count < info.num_frames:
        raise UserError(f"input={src}: corrupt or truncated video: decoded {scan.count} of {info.num_frames} "
                        f"frames{reason}; nothing written")
    if scan.error:
        raise UserError(f"input={src}: corrupt video: decoding stopped after frame {scan.count}{reason}; "
                        "nothing written")
    if scan.times is None or scan.constant_rate(rate):
        return None, scan.time_base, scan.damaged
    step = round(1 / (rate * scan.time_base))  # the held last frame of `interpolate=` lasts one nominal frame
    ends = [*scan.times[1:], scan.times[-1] + step]
    # interpolated frames are evenly spaced between their input frames: ticks of time_base / factor
    times = [t * factor + k * (end - t) for t, end in zip(scan.times, ends) for k in range(factor)]
    return times, scan.time_base / factor, scan.damaged


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def upscale_video(cfg: UpscaleOptions | Mapping[str, Any]) -> dict:
    """Upscale `cfg.input` to `cfg.output` (a video, an image, or `stills` of a video; with
    `interpolate=N`, N times the frame rate), or every file of a folder into another; prints a
    progress bar and a one-line summary."""
    from vsr.inference import folder, stills

    cfg = options(UpscaleOptions, cfg)
    factor = stills.check_interpolate(cfg.interpolate)
    overwrite, progress = flag(cfg, "overwrite"), flag(cfg, "progress")
    flag(cfg, "color_match")  # images and stills too: every boolean is checked before any work
    flag(cfg, "resume")
    engine = cfg.engine
    check_choice("engine", engine, ("local", "ray"))
    if engine == "ray":
        from vsr.inference.ray_engine import upscale_with_ray

        return upscale_with_ray(cfg, upscale_video)
    if folder.is_folder_job(cfg):
        return folder.upscale_folder(cfg, upscale_video, overwrite)
    if stills.is_image(cfg.input):
        return stills.upscale_image(cfg, factor)
    if cfg.stills is not None:
        return stills.upscale_stills(cfg, factor)
    src, dst = check_paths(cfg.input, cfg.output, overwrite)
    check_encoder_options(cfg.crf, cfg.preset)
    with OutputClaim(dst, overwrite) as claim:  # held until the file is in place: one run per output
        return upscale_file(cfg, src, dst, claim, factor, progress)


def upscale_file(cfg: UpscaleOptions, src: Path, dst: Path, claim: OutputClaim, factor: int, progress: bool) -> dict:
    """`upscale_video`'s work on a video file, once its options are checked and `dst` is claimed."""
    from vsr.inference import resume, stills

    weights_dir(cfg)  # a missing model is reported before any decoding
    info = probe(src)
    weights = weights_dir(cfg, (info.width, info.height))
    if info.num_frames == 0:
        raise UserError(f"input={src}: the video has zero frames")
    if factor > 1 and info.num_frames < 2:
        raise UserError(f"input={src} has one frame: interpolate={factor} needs at least two (drop interpolate)")
    order = cfg.interpolate_order
    check_choice("interpolate_order", order, ("upscale_first", "interpolate_first"))
    upscaler = make_upscaler(cfg, (info.width, info.height))
    check_fits(upscaler, info.width, info.height)  # before the input scan and the first frame, not at the OOM killer
    lost = frames_lost(info)
    if lost:
        print(f"warning: input={src}: its duration holds {info.duration_frames} frames at {info.fps:g} fps but only "
              f"{info.num_frames} can be decoded: {lost} frames lost (truncated or corrupt file); "
              f"the output has the {info.num_frames} decodable frames", file=sys.stderr)
    times, time_base, damaged = scan_input(src, info, info.rate, factor)
    if damaged:
        print(f"warning: input={src}: {len(damaged)} damaged frame{'s' * (len(damaged) > 1)} (the decoder could only "
              f"conceal errors, e.g. by repeating an earlier frame): frame{'s' * (len(damaged) > 1)} "
              f"{', '.join(map(str, damaged[:10]))}{' ...' if len(damaged) > 10 else ''}; upscaled as decoded",
              file=sys.stderr)
    out_w, out_h = upscaler.output_size(info.width, info.height)
    segments = resume.segments_for(cfg, src, dst, weights, factor)
    interpolator = stills.make_interpolator(cfg, factor, upscaler.device)
    total = info.num_frames * factor

    # `kill` and a closed terminal (SIGHUP) clean up like Ctrl-C (signals reach the main thread only:
    # a job in another thread, such as the web page's, is cancelled through its progress listener)
    main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGTERM, signal.SIGHUP) if main_thread else ()
    previous = {signum: signal.signal(signum, _raise_interrupt) for signum in signals}
    start = time.perf_counter()
    # counts the frames the model upscales (with interpolate_first: the interpolated ones), as each finishes
    bar = Progress(info.num_frames if order == "upscale_first" else total, "upscale", enabled=progress)
    upscaler.report_to(bar)
    try:
        reader = cfg.reader
        if info.rotation and reader == "auto":
            reader = "pyav"  # decord turns rotated frames into garbage or errors; PyAV keeps them as stored
        frames = count_checked(stream_frames(src, reader), info.num_frames, src)
        if segments is not None:  # resume=true: frames go to segment files, joined into `dst` below
            done, chunks = resume.resumed_frames(frames, upscaler, segments, info.num_frames, info.width,
                                                 info.height, bar)
            segments.write(chunks, done, resume.segment_writer_options(
                cfg, info.rate, encoder_threads(cfg, upscaler.device), times, time_base))
            out_frames: Iterable[np.ndarray | torch.Tensor] = ()
        elif interpolator is None:  # float frames: the writer turns them into YUV in one rounding
            out_frames = upscaler.stream_float(frames)
        else:  # scene cuts are found on the input frames, whichever runs first
            from vsr.interpolation.stream import SceneCuts

            cuts = SceneCuts(interpolator.cut_threshold)
            frames = cuts.watch(frames)
            if order == "upscale_first":
                out_frames = interpolator.stream(upscaler.stream(frames), cuts)
            else:
                out_frames = upscaler.stream(interpolator.stream(frames, cuts))
        with VideoWriter(dst, info.rate * factor, audio_from=src,
                         crf=cfg.crf, preset=cfg.preset, start=info.start,
                         threads=encoder_threads(cfg, upscaler.device),
                         rotation=info.rotation, claim=claim, times=times, time_base=time_base) as writer:
            for dropped in writer.audio.dropped if writer.audio else ():
                print(f"warning: input={src}: {dropped}; it is not in the output", file=sys.stderr)
            if segments is not None:
                segments.join(writer)
            for frame in out_frames:
                writer.write(frame)
            if writer.frames != total:
                raise UserError(f"input={src}: decoded {writer.frames // factor} frames but the container declares "
                                f"{info.num_frames}; nothing written (corrupt or truncated video?)")
        if segments is not None:
            segments.remove()
    except KeyboardInterrupt:
        bar.close()
        kept = (f"; resume=true continues after frame {segments.done()} ({segments.folder})"
                if segments is not None else "")
        print(f"interrupted: {dst} not written (no partial file left){kept}", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        bar.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    seconds = time.perf_counter() - start
    summary = {"output": str(dst), "weights": weights, "frames": writer.frames, "input_size": [info.width, info.height],
               "output_size": list(writer.size), "seconds": round(seconds, 3),
               "fps": round(writer.frames / seconds, 3), "audio": writer.audio_mode,
               "dropped_streams": writer.audio.dropped if writer.audio else [],
               "device": str(upscaler.device), "precision": upscaler.precision, "frames_lost": lost,
               "frames_damaged": len(damaged), "variable_frame_rate": times is not None,
               "runtime": upscaler.runtime.ran, "ensemble": upscaler.ensemble.size, "denoise": upscaler.denoise,
               "sharpen": upscaler.sharpen,
               "tile": upscaler.tile,
               "model_seconds": round(upscaler.model_seconds, 3), "computed_frames": upscaler.computed_frames,
               "runtime_prepare_seconds": round(upscaler.runtime.prepare_seconds, 3),
               "interpolate": factor, "output_fps": float(info.rate * factor),
               "scene_cuts": list(interpolator.cuts) if interpolator is not None else [],
               "model": model_name(cfg), "model_scale": upscaler.scale,
               "model_passes": upscaler.passes(info.width, info.height)}
    cropped = " (cropped to even size)" if tuple(writer.size) != (out_w, out_h) else ""
    passes = f" ({summary['model_passes']} passes)" if summary["model_passes"] > 1 else ""
    more = (f" at {float(info.rate * factor):g} fps (x{factor} frames, {order.replace('_', ' ')}, "
            f"{len(interpolator.cuts)} scene cuts held)" if interpolator is not None else "")
    print(f"upscaled {writer.frames} frames{more} {info.width}x{info.height} -> {writer.size[0]}x{writer.size[1]}"
          f"{cropped} by {summary['model']} x{upscaler.scale}{passes}"
          f" in {seconds:.1f} s ({summary['fps']:.2f} frames/s), {writer.streams_summary}, "
          f"{upscaler.device} {upscaler.precision} {upscaler.runtime.ran}"
          f"{f' ensemble x{upscaler.ensemble.size}' if upscaler.ensemble.size > 1 else ''}"
          f"{f' denoise {upscaler.denoise:g}' if upscaler.denoise > 0 else ''}"
          f"{f' sharpen {upscaler.sharpen:g}' if upscaler.sharpen > 0 else ''}: {dst}"
          f"{f' ({lost} input frames lost)' if lost else ''}{f' ({len(damaged)} damaged input frames)' if damaged else ''}")
    print(json.dumps(summary))  # the same, for scripts: model_seconds against seconds is the pipeline's overhead
    return summary
