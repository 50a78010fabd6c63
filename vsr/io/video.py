"""Read video files as uint8 RGB frames, streaming, with decord (fast seeking) or PyAV."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsr.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int


def _check_file(path: str | Path) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: video file not found")
    if file.stat().st_size == 0:
        raise UserError(f"{path}: video file is empty (0 bytes)")
    return file


def probe(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video (PyAV container metadata, counted when missing)."""
    import av

    file = _check_file(path)
    try:
        with av.open(str(file)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            num = stream.frames or sum(1 for _ in container.decode(video=0))
            return VideoInfo(int(num), fps, stream.codec_context.width, stream.codec_context.height)
    except av.error.FFmpegError as err:
        raise UserError(f"{path}: not a readable video ({err.strerror or type(err).__name__})") from None


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
        raise UserError(f"{path}: not a readable video ({err.strerror or type(err).__name__})") from None


def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """All frames (up to `max_frames`) as `(T, H, W, 3)` uint8 RGB; decord first, PyAV fallback."""
    file = _check_file(path)
    try:
        import decord

        reader = decord.VideoReader(str(file), ctx=decord.cpu(0))
        count = len(reader) if max_frames is None else min(len(reader), max_frames)
        frames = reader.get_batch(list(range(count))).asnumpy()
    except Exception:  # decord missing, or a container it cannot parse: let PyAV try
        frames = list(iter_frames(file, max_frames))
        frames = np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    if len(frames) == 0:
        raise UserError(f"{path}: video has zero decodable frames")
    return frames
