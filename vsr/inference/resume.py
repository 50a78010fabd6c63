"""`resume=true`: a long video is written as segment files that outlive a killed run; a new run with
the same options continues after the last complete segment, and the segments are joined into the
output without re-encoding (`VideoWriter.copy_segment`).

Segments end where the model's windows end, so a resumed run computes the same windows, hence the
same frames, as one that was never stopped. They live in `.NAME.segments/` beside the output, with
`job.json` naming the input and the options that shape the frames: a run with another input or other
options is refused rather than joined to them. The folder is removed once the output is complete.
"""

import json
import shutil
import sys
from itertools import islice
from pathlib import Path

from vsr.errors import UserError, check_number
from vsr.io.writer import VideoWriter
from vsr.options import UpscaleOptions

# the options that change the output's frames or their encoding: a resumed run must repeat them
SHAPING = ("weights", "shipped", "scale", "outscale", "fit", "denoise", "sharpen", "color_match", "ensemble",
           "precision", "chunk", "overlap", "crf", "preset")


def segments_folder(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.segments")


def fingerprint(cfg: UpscaleOptions, src: Path, weights: str) -> dict:
    stat = src.stat()
    return {"input": str(src.resolve()), "input_bytes": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
            "model": str(weights), **{key: _plain(getattr(cfg, key)) for key in SHAPING}}


def _plain(value):
    return value if value is None or isinstance(value, (bool, int, float)) else str(value)


class Segments:
    """The segment files of one output: `seg-FRAME.mp4`, each holding output frames from FRAME on."""

    def __init__(self, dst: Path, job: dict, size: int):
        check_number("segment", size, 1, integer=True, hint=" (output frames per segment file)")
        self.folder, self.job, self.size = segments_folder(dst), job, int(size)

    def check(self) -> None:
        """Refuse the segments a stopped run left when it had another input or other options."""
        record = self.folder / "job.json"
        if record.is_file():
            before = json.loads(record.read_text())
            changed = [key for key in self.job if before.get(key) != self.job[key]]
            if changed:
                raise UserError(f"resume=true: {self.folder} was made with another {', '.join(changed)} "
                                f"({', '.join(f'{k}={before.get(k)}' for k in changed)}); run with the same, "
                                f"or delete that folder to start again")

    def open(self) -> int:
        """Create the folder, or check the one a stopped run left: returns the frames already done."""
        record = self.folder / "job.json"
        self.check()
        if not record.is_file():
            self.folder.mkdir(exist_ok=True)
            partial = record.with_suffix(".partial")
            partial.write_text(json.dumps(self.job, indent=1))
            partial.replace(record)
        return self.done()

    def starts(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("seg-*.mp4") if p.stem.split("-")[1].isdigit())

    def done(self) -> int:
        """Frames held by complete segments that follow each other from frame 0."""
        from vsr.io.video import probe

        done = 0
        for start in self.starts():
            if start != done:
                break
            done += probe(self.path(start)).num_frames
        return done

    def path(self, start: int) -> Path:
        return self.folder / f"seg-{start:08d}.mp4"

    def write(self, chunks, done: int, writer_options) -> None:
        """Write the chunks (one window's frames each, from frame `done` on) into segments of at least
        `size` frames, each renamed into place when complete; `writer_options(start)`: the
        `VideoWriter` options of the segment that starts at output frame `start`."""
        chunks = iter(chunks)
        for chunk in chunks:
            with VideoWriter(self.path(done), **writer_options(done)) as writer:
                while chunk is not None:
                    for frame in chunk:
                        writer.write(frame)
                    chunk = None if writer.frames >= self.size else next(chunks, None)
            done += writer.frames

    def join(self, writer: VideoWriter) -> None:
        for start in self.starts():
            writer.copy_segment(self.path(start), start)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def resumed_frames(frames, upscaler, segments: Segments, num_frames: int, width: int, height: int, bar):
    """The upscaler's chunks for the frames not yet in a segment (all of them on a first run)."""
    done = segments.open()
    if done > num_frames:
        raise UserError(f"resume=true: {segments.folder} holds {done} frames but the input has {num_frames}; "
                        "delete that folder to start again")
    if done:
        bar.advance(done)
        count = len(segments.starts())
        said = f"resuming after frame {done} of {num_frames} ({count} segment{'s' * (count != 1)} done)"
        bar.step(said) if bar.enabled else print(said, file=sys.stderr)  # said with progress=false too
    first = upscaler.resume_start(done, num_frames, width, height)
    return done, upscaler.stream_chunks(islice(frames, first, None), done=done, first=first)


def segments_for(cfg: UpscaleOptions, src: Path, dst: Path, weights: str, factor: int) -> Segments | None:
    """The segments of this run with `resume=true` (None without it)."""
    from vsr.inference.video import flag

    if not flag(cfg, "resume"):
        if segments_folder(dst).is_dir():
            print(f"note: {segments_folder(dst)} holds the segments of a stopped resume=true run; resume=true "
                  "continues it (this run starts at frame 0 and leaves them)", file=sys.stderr)
        return None
    if factor > 1:
        raise UserError(f"resume=true does not combine with interpolate={factor} yet; drop one of them")
    segments = Segments(dst, fingerprint(cfg, src, weights), cfg.segment)
    segments.check()  # another input or other options are refused now, before any progress is shown
    return segments


def segment_writer_options(cfg: UpscaleOptions, rate, threads: int, times: list[int] | None, time_base):
    """`VideoWriter` options of the segment from output frame `start` on: times from 0 (the join moves them)."""

    def options(start: int) -> dict:
        shifted = None if times is None else [t - times[start] for t in times[start:]]
        return {"rate": rate, "crf": cfg.crf, "preset": cfg.preset,
                "threads": threads, "times": shifted, "time_base": time_base}

    return options
