"""Temporal windows for running a bidirectional model over a long video in pieces.

A window is `(lo, start, stop, hi)`: the model runs on frames `lo:hi` and frames `start:stop` of
its output are kept; the rest is context (at least `overlap` frames on each side of every kept
frame, except at the ends of the video). Every frame is kept exactly once, in order.

With `fixed=True` every window but a video shorter than one window has the same length,
`chunk + 2 * overlap` frames: the first window starts at frame 0 and keeps `chunk + overlap`
frames, the middle ones keep `chunk`, and the last one reaches back as far as it needs to. One
clip length lets a runtime compiled for a fixed frame count (an ONNX graph of a recurrent model)
run every call, and it spends no more frames on context than centred windows would.
"""


def next_window(done: int, available: int, finished: bool, chunk: int, overlap: int,
                fixed: bool = True) -> tuple[int, int, int, int] | None:
    """The next window after `done` frames were kept, when `available` frames have been read
    (`finished`: the video has no more); None while more frames are needed (or all are kept).
    A full window runs once a frame after it has been read, so a stream gets the same windows as
    a clip of known length."""
    if done >= available:
        return None
    span = chunk + 2 * overlap
    lo = max(0, done - overlap)
    if lo + span < available:
        return lo, done, lo + span - overlap, lo + span
    if not finished:
        return None
    if fixed:
        lo = max(0, min(lo, available - span))
    return lo, done, available, available


def oldest_needed(done: int, available: int, chunk: int, overlap: int, fixed: bool = True) -> int:
    """The first frame a later window can still read (earlier ones may be dropped)."""
    lo = max(0, done - overlap)
    return max(0, min(lo, available - chunk - 2 * overlap)) if fixed else lo


def plan_windows(num_frames: int, chunk: int, overlap: int, fixed: bool = True) -> list[tuple[int, int, int, int]]:
    """All windows over a clip of known length (`chunk <= 0`: one window, the whole clip)."""
    if chunk <= 0:
        return [(0, 0, num_frames, num_frames)] if num_frames else []
    windows, done = [], 0
    while (window := next_window(done, num_frames, True, chunk, overlap, fixed)) is not None:
        windows.append(window)
        done = window[2]
    return windows
