"""`upscale.py input=DIR|VIDEO output=DIR|VIDEO engine=ray`: the same job as Ray tasks, on the cluster
`RAY_ADDRESS` names or on a local one (`workers=` CPU workers).

Videos longer than two segments are split into parts that end where the model's windows end; each
part reads the frames its windows need on both sides (the context a one-process run has there), so
the parts hold exactly the frames a one-process run computes, and the driver joins them without
re-encoding (`resume.Segments`). Other files are one task each. Outputs, skipping finished files,
resuming finished parts and the closing table are as for a folder in one process. Every node must
see the input and output folders at the same paths (a shared file system) and have vsrlab installed.
"""

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from vsr.errors import UserError, check_number
from vsr.inference import folder as folders
from vsr.options import UpscaleOptions, updated


@dataclass
class Part:
    """Output frames `start`..`stop` of a video (window ends), written to the segment file `path`."""

    file: str
    start: int
    stop: int
    path: str


def window_ends(num_frames: int, chunk: int, overlap: int) -> list[int]:
    """Where the windows over the whole video end. Fixed and shortened last windows differ only in
    what the last one reads, so every end but the last is the same for every runtime."""
    from vsr.inference.windows import plan_windows

    return [stop for _, _, stop, _ in plan_windows(num_frames, chunk, overlap, fixed=True)]


def plan_parts(cfg: UpscaleOptions, src: Path, dst: Path, num_frames: int, size: tuple[int, int]) -> list[Part]:
    """The parts of `src` (each at least `segment` frames, ending at a window end), or [] when it
    is short enough for one task."""
    from vsr.inference.resume import Segments, fingerprint
    from vsr.inference.video import make_upscaler, weights_dir

    segment = cfg.segment
    check_number("segment", segment, 1, integer=True)
    if num_frames < 2 * segment:
        return []
    upscaler = make_upscaler(cfg, size)
    ends = window_ends(num_frames, upscaler.fit_chunk(*size), upscaler.overlap)
    segments = Segments(dst, fingerprint(cfg, src, weights_dir(cfg, size)), segment)
    segments.open()
    parts, start = [], 0
    for end in ends:
        if end - start >= segment or end == num_frames:
            parts.append(Part(str(src), start, end, str(segments.path(start))))
            start = end
    return parts


def upscale_part(cfg: UpscaleOptions, part: Part) -> dict:
    """Write output frames `part.start`..`part.stop` into `part.path` (on a Ray worker): the frames a
    one-process run computes there, from the same windows."""
    from vsr.inference.resume import segment_writer_options
    from vsr.inference.video import encoder_threads, make_upscaler, scan_input
    from vsr.io.video import count_checked, probe, stream_frames
    from vsr.io.writer import VideoWriter

    started = time.perf_counter()
    src = Path(part.file)
    info = probe(src)
    upscaler = make_upscaler(cfg, (info.width, info.height))
    times, time_base, _ = scan_input(src, info, info.rate, 1)  # the frame times of a variable-rate video
    first = upscaler.resume_start(part.start, info.num_frames, info.width, info.height)
    frames = islice(count_checked(stream_frames(src, cfg.reader), info.num_frames, src), first, None)
    options = segment_writer_options(cfg, info.rate, encoder_threads(cfg, upscaler.device), times, time_base)
    with VideoWriter(part.path, **options(part.start)) as writer:
        for chunk in upscaler.stream_chunks(frames, done=part.start, first=first):
            for frame in chunk:
                writer.write(frame)
            if part.start + writer.frames >= part.stop:
                break
    if part.start + writer.frames != part.stop:
        raise UserError(f"{src}: part {part.start}..{part.stop} ended at frame {part.start + writer.frames}")
    return {"frames": writer.frames, "seconds": time.perf_counter() - started}


def join_parts(cfg: UpscaleOptions, src: Path, dst: Path, parts: list[Part]) -> int:
    """The output of `src` from its finished parts, without re-encoding (its frame count); the segments
    are removed."""
    from vsr.inference.resume import segments_folder
    from vsr.inference.video import flag, scan_input
    from vsr.io.claim import OutputClaim
    from vsr.io.video import probe
    from vsr.io.writer import VideoWriter

    info = probe(src)
    times, time_base, _ = scan_input(src, info, info.rate, 1)
    with OutputClaim(dst, flag(cfg, "overwrite")) as claim, \
            VideoWriter(dst, info.rate, audio_from=src, crf=cfg.crf,
                        preset=cfg.preset, start=info.start, rotation=info.rotation,
                        claim=claim, times=times, time_base=time_base) as writer:
        for part in parts:
            writer.copy_segment(Path(part.path), part.start)
        if writer.frames != info.num_frames:
            raise UserError(f"{src}: the parts hold {writer.frames} of {info.num_frames} frames; nothing written")
    shutil.rmtree(segments_folder(dst), ignore_errors=True)
    return writer.frames


def check_workers(cfg: UpscaleOptions) -> None:
    workers = cfg.workers
    if workers != "auto":
        check_number("workers", workers, 1, integer=True, hint=" or auto")


def connect(cfg: UpscaleOptions):
    """ray.init on RAY_ADDRESS's cluster, else a local one with `workers` CPUs (auto: all)."""
    try:
        import ray
    except ImportError:
        raise UserError("engine=ray needs Ray: pip install 'vsrlab[cluster]' (or pip install 'ray>=2.40')") from None

    workers = cfg.workers
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)
        else:
            # tasks pass paths and small dicts: Ray's default object store (30% of RAM) is not needed
            ray.init(num_cpus=None if workers == "auto" else int(workers), include_dashboard=False,
                     log_to_driver=False, object_store_memory=256 * 2**20)
    return ray


def upscale_with_ray(cfg: UpscaleOptions, upscale_one) -> dict:
    """Every file (a folder's, or one video) as Ray tasks; prints a table and a JSON line like a folder run."""
    from vsr.inference.video import flag
    from vsr.io.video import VIDEO_EXTENSIONS, probe

    overwrite = flag(cfg, "overwrite")
    check_workers(cfg)  # before any work, also when nothing is left to do and Ray is not started
    job_cfg = updated(cfg, progress=False, engine="local")
    if folders.is_folder_job(cfg):
        src, dst = folders.check_folders(cfg)
        files = [(f, folders.output_for(f, src, dst)) for f in folders.find_inputs(src, dst)]
        if not files:
            raise UserError(f"input={src}: no videos or images in the folder or its sub-folders")
    else:
        from vsr.inference.video import check_paths

        source, target = check_paths(cfg.input, cfg.output, overwrite)
        src, files = source.parent, [(source, target)]
    rows: dict[str, dict[str, Any]] = {}
    tasks: list[tuple[str, Part | None, UpscaleOptions]] = []  # (name, part or None for a whole file, its config)
    split: dict[str, dict[str, Any]] = {}
    for file, target in files:
        name = str(file.relative_to(src))
        row = {"file": name, "output": str(target), "frames": None, "seconds": None}
        if target.exists() and not overwrite:
            rows[name] = {**row, "result": "done earlier"}
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        file_cfg = folders.with_paths(job_cfg, file, target)
        try:
            info = probe(file) if file.suffix.lower() in VIDEO_EXTENSIONS else None
            parts = plan_parts(file_cfg, file, target, info.num_frames, (info.width, info.height)) if info else []
        except UserError as err:
            rows[name] = {**row, "result": f"failed: {err}"}
            continue
        if not parts:
            tasks.append((name, None, file_cfg))
            rows[name] = row
            continue
        split[name] = {"file": file, "target": target, "parts": parts, "seconds": 0.0, "error": None}
        rows[name] = row
        for part in parts:
            if not Path(part.path).is_file():  # else finished by an earlier run
                tasks.append((name, part, file_cfg))
    pending: dict[Any, tuple[str, Part | None]] = {}  # Ray object ref -> its task
    if tasks:  # Ray is started only when there is work (a re-run of a finished job needs none)
        ray = connect(cfg)
        remote_one, remote_part = ray.remote(num_cpus=1)(_run_one), ray.remote(num_cpus=1)(upscale_part)
        pending = {(remote_one.remote(file_cfg, upscale_one) if part is None else remote_part.remote(file_cfg, part)):
                   (name, part) for name, part, file_cfg in tasks}
        where = f"on {ray.cluster_resources().get('CPU', 0):g} CPUs"
    else:
        where = "(nothing left to do; Ray not started)"
    total = len(pending)
    print(f"ray: {total} tasks for {len(files)} files {where}", file=sys.stderr, flush=True)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        name, piece = pending.pop(ready[0])
        try:
            outcome = ray.get(ready[0])
        except Exception as err:  # a task's error arrives wrapped in a RayTaskError
            outcome = {"result": f"failed: {_one_line(err)}", "frames": None, "seconds": None}
        if piece is None:
            rows[name].update(outcome)
        elif outcome.get("result", "").startswith("failed"):
            split[name]["error"] = split[name]["error"] or outcome["result"]
        else:
            split[name]["seconds"] += outcome["seconds"]
        where = f" frames {piece.start}-{piece.stop}" if piece else ""
        print(f"[{total - len(pending)}/{total}] {name}{where}", file=sys.stderr, flush=True)
    for name, job in split.items():
        if job["error"]:
            rows[name]["result"] = job["error"]
            continue
        try:
            rows[name].update(result="upscaled", frames=join_parts(job_cfg, job["file"], job["target"], job["parts"]),
                              seconds=round(job["seconds"], 1))
        except UserError as err:
            rows[name]["result"] = f"failed: {err}"
    ordered = [rows[str(f.relative_to(src))] for f, _ in files]
    print(folders.table(ordered))
    failed = [r for r in ordered if r["result"].startswith("failed")]
    summary = {"input": str(cfg.input), "output": str(cfg.output), "files": ordered,
               "failed": len(failed), "engine": "ray"}
    print(json.dumps(summary))
    if failed:
        raise UserError(f"{len(failed)} of {len(ordered)} files failed (named in the table above); a re-run redoes "
                        "only what is not done")
    return summary


def _run_one(cfg: UpscaleOptions, upscale_one) -> dict:
    started = time.perf_counter()
    try:
        row = {"result": "upscaled", "frames": upscale_one(cfg).get("frames")}
    except UserError as err:
        row = {"result": f"failed: {err}", "frames": None}
    return {**row, "seconds": round(time.perf_counter() - started, 1)}


def _one_line(err: BaseException) -> str:
    from vsr.errors import find_user_error

    cause = getattr(err, "cause", None) or err
    user = find_user_error(cause)
    return str(user) if user else f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"
