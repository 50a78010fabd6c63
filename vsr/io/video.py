"""Read video files as uint8 RGB frames, streaming, with decord (fast seeking) or PyAV."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
READERS = ("auto", "decord", "pyav")


@dataclass
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int
    rate: Fraction = Fraction(25)  # exact average frame rate (e.g. 30000/1001); probe's fallback is 25 too
    has_audio: bool = False
    start: float = 0.0  # time of the first frame, seconds (audio stays in sync with it)
    rotation: int = 0  # display rotation in degrees (phones store portrait video as rotated landscape)
    duration_frames: int | None = None  # frames the stream's recorded duration holds (None: unknown)
    # the duration is the video stream's own and the frames were counted by decoding (MKV, WebM): the
    # two compare exactly; a container's duration also covers its audio, so it allows a frame more
    duration_exact: bool = False


def _check_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: video file not found")
    if file.stat().st_size == 0:
        raise UserError(f"{path}: video file is empty (0 bytes)")
    return file


def _unreadable(path, err) -> UserError:
    reason = getattr(err, "strerror", None) or type(err).__name__
    return UserError(f"{path}: not a readable video, or corrupt/truncated ({reason})")


def _stream_seconds(container, stream) -> tuple[float | None, bool]:
    """The video stream's duration: its own, MKV's per-track DURATION tag, else the container's;
    and whether it is the stream's own."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), True
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec), True
        except ValueError:
            pass
    return (container.duration / 1_000_000 if container.duration else None), False


def probe(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video (PyAV container metadata, counted when missing)."""
    import av

    file = _check_file(path)
    try:
        with av.open(str(file)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate or 0) or 25.0
            num = stream.frames or sum(1 for _ in container.decode(video=0))
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            rotation = 0
            if num:
                container.seek(0)
                first = next(container.decode(video=0), None)
                rotation = int(round(first.rotation)) if first is not None and first.rotation else 0
            seconds, own = _stream_seconds(container, stream)
            return VideoInfo(int(num), fps, stream.codec_context.width, stream.codec_context.height,
                             Fraction(rate) if rate else Fraction(25), bool(container.streams.audio), start,
                             rotation, round(seconds * fps) if seconds else None, own and not stream.frames)
    except av.error.FFmpegError as err:
        raise _unreadable(path, err) from None


@dataclass
class FrameScan:
    """What decoding the whole video stream once found, before any frame is upscaled."""

    times: list[int] | None  # presentation time of each decodable frame in `time_base` ticks (None: unknown)
    time_base: Fraction
    damaged: list[int]  # indices of frames the decoder concealed errors in (shown as a copy of an earlier one)
    count: int  # frames decoded
    error: str | None = None  # why decoding stopped before the end of the stream

    def constant_rate(self, rate: Fraction) -> bool:
        """Whether every frame is within one tick of `first + i / rate` (what a constant-rate file gives)."""
        if not self.times:
            return True
        step = 1 / (rate * self.time_base)
        return all(abs(t - self.times[0] - i * step) <= 1 for i, t in enumerate(self.times))


def scan_frames(path: str | Path) -> FrameScan:
    """Decode every frame once, without converting pixels: their times, and the frames the decoder
    could only conceal errors in. Far cheaper than the model, and it turns a file that would fail or
    be re-timed after the whole run into a report before it. Slice threads only: with frame threads
    FFmpeg's H.264 decoder sometimes returns a concealed frame before flagging it (3 in 600 scans)."""
    import av

    file = _check_file(path)
    times, damaged, decoded, error = [], [], 0, None
    time_base = None
    try:
        with av.open(str(file)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            time_base = stream.time_base
            for frame in container.decode(stream):
                if frame.is_corrupt:
                    damaged.append(decoded)
                decoded += 1
                if frame.pts is None:
                    times = None  # e.g. some AVI streams: the constant-rate timing is all there is
                elif times is not None:
                    times.append(frame.pts)
    except av.error.FFmpegError as err:
        error = getattr(err, "strerror", None) or type(err).__name__
    if times and any(later <= earlier for earlier, later in zip(times, times[1:])):
        times = None  # times out of order (a damaged stream): no encoder takes them
    return FrameScan(times, Fraction(time_base or 1), damaged, decoded, error)


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames `(H, W, 3)` uint8 RGB one at a time (constant memory), via PyAV."""
    import av

    file = _check_file(path)
    try:
        with av.open(str(file)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: has no video stream")
            container.streams.video[0].thread_type = "AUTO"
            for i, frame in enumerate(container.decode(video=0)):
                if max_frames is not None and i >= max_frames:
                    return
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as err:
        raise _unreadable(path, err) from None


def _decord():
    """decord, with its own FFmpeg log quieted (it would print to stderr on damaged files)."""
    # OpenCV first: decord's bundled zlib, when it is loaded before OpenCV's, makes every PNG that
    # cv2.imwrite writes unreadable ("libpng error: bad parameters to zlib"; opencv-python-headless 5.1)
    import cv2  # noqa: F401
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _decord_batches(reader, path: Path, batch: int) -> Iterator[np.ndarray]:
    for start in range(0, len(reader), batch):
        try:
            yield reader.get_batch(list(range(start, min(start + batch, len(reader))))).asnumpy()
        except Exception as err:  # decord.DECORDError on a damaged stream
            reason = re.sub(r"\[[\d:]+\] \S+:\d+: ", "", str(err).strip().splitlines()[0])  # decord's source lines
            raise UserError(f"{path}: corrupt or truncated video (decoding stopped at frame {start}: "
                            f"{reason[:120]})") from None


def stream_frames(path: str | Path, reader: str = "auto", batch: int = 8) -> Iterator[np.ndarray]:
    """Yield every frame `(H, W, 3)` uint8 RGB in order, in constant memory.

    `reader="auto"` decodes with decord and falls back to PyAV when decord cannot open the
    file or fails on its first frames (decord mishandles rotated phone videos); `"decord"` /
    `"pyav"` force one. Check frames against the container's frame count with `count_checked`,
    so that a truncated file is an error, not a shorter output.
    """
    if reader not in READERS:
        raise UserError(f"reader={reader} is not supported; choose one of: {', '.join(READERS)}")
    file = _check_file(path)
    if reader in ("auto", "decord"):
        try:
            decord = _decord()
            decoder = decord.VideoReader(str(file), ctx=decord.cpu(0))
        except Exception as err:  # decord missing, or a container it cannot parse
            if reader == "decord":
                raise UserError(f"{path}: decord cannot read this file ({type(err).__name__}); "
                                "use reader=pyav") from None
        else:
            batches = _decord_batches(decoder, file, batch)
            try:
                first = next(batches, None)
            except UserError:
                if reader == "decord":
                    raise
            else:
                if first is not None:
                    yield from first
                    for frames in batches:
                        yield from frames
                    return
    yield from iter_frames(file)


def count_checked(frames: Iterator[np.ndarray], expected: int, path) -> Iterator[np.ndarray]:
    """Pass frames through; raise when the stream ends before `expected` frames (truncated file)."""
    count = 0
    for frame in frames:
        count += 1
        yield frame
    if count < expected:
        raise UserError(f"{path}: corrupt or truncated video: decoded {count} of {expected} frames")


def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """All frames (up to `max_frames`) as `(T, H, W, 3)` uint8 RGB; decord first, PyAV fallback."""
    file = _check_file(path)
    try:
        decord = _decord()
        reader = decord.VideoReader(str(file), ctx=decord.cpu(0))
        count = len(reader) if max_frames is None else min(len(reader), max_frames)
        frames = reader.get_batch(list(range(count))).asnumpy()
    except Exception:  # decord missing, or a container it cannot parse: let PyAV try
        frames = list(iter_frames(file, max_frames))
        frames = np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    if len(frames) == 0:
        raise UserError(f"{path}: video has zero decodable frames")
    return frames
