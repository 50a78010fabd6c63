"""Temporal windows (vsr/inference/windows.py): every frame kept once, with its context, and
(fixed) one clip length for every model call, whether the video's length is known or streamed."""

import pytest

from vsr.inference.windows import next_window, oldest_needed, plan_windows


def streamed(num_frames: int, chunk: int, overlap: int, fixed: bool) -> tuple[list, int]:
    """The windows the Upscaler runs when frames arrive one by one, and the most frames held."""
    windows, done, first, held = [], 0, 0, 0
    for available in range(1, num_frames + 2):
        finished = available > num_frames
        available = min(available, num_frames)
        held = max(held, available - first)
        while (window := next_window(done, available, finished, chunk, overlap, fixed)) is not None:
            assert window[0] >= first, "a window reads a frame that was already dropped"
            windows.append(window)
            done = window[2]
            first = max(first, oldest_needed(done, available, chunk, overlap, fixed))
    return windows, held


@pytest.mark.parametrize("fixed", [True, False])
def test_every_frame_kept_once_with_its_context(fixed):
    for frames in range(1, 30):
        for chunk in range(1, 7):
            for overlap in range(0, 4):
                windows = plan_windows(frames, chunk, overlap, fixed)
                assert streamed(frames, chunk, overlap, fixed)[0] == windows
                kept = [t for _, start, stop, _ in windows for t in range(start, stop)]
                assert kept == list(range(frames))
                span = chunk + 2 * overlap
                for lo, start, stop, hi in windows:
                    assert 0 <= lo <= start < stop <= hi <= frames
                    assert start - lo >= min(overlap, start)  # context before, unless the video starts
                    assert hi - stop >= min(overlap, frames - stop)  # and after, unless it ends
                    if fixed:
                        assert hi - lo == min(span, frames)  # one clip length for every call
                    else:
                        assert hi - lo <= span


def test_fixed_windows_cost_and_memory():
    """100 frames, chunk 16, overlap 2: 20-frame calls; the model runs 6 + 1 windows
    (first keeps 18, then 16 each, the last reaches back), and the stream holds at most
    2 * chunk + 2 * overlap + 1 frames."""
    windows = plan_windows(100, 16, 2)
    assert [(lo, start, stop, hi) for lo, start, stop, hi in windows[:2]] == [(0, 0, 18, 20), (16, 18, 34, 36)]
    assert windows[-1][3] == 100 and windows[-1][3] - windows[-1][0] == 20
    computed = sum(hi - lo for lo, _, _, hi in windows)
    assert computed == 20 * len(windows) and computed / 100 < 1.5
    assert streamed(100, 16, 2, True)[1] <= 2 * 16 + 2 * 2 + 1


def test_one_window_when_chunk_is_off_or_the_clip_is_short():
    assert plan_windows(7, 0, 2) == [(0, 0, 7, 7)]
    assert plan_windows(5, 16, 2) == [(0, 0, 5, 5)]
    assert plan_windows(0, 4, 1) == []
