"""How much of the current piece of work is done, counted where the work happens.

A caller marks a piece of work (`within`); the code that does it says when a part of it (`part`) or
one of its output frames (`frame_done`) is finished. The runners count frames as they leave the model,
so they live below the progress bar that listens (`vsr.inference.progress`) and import only this.
"""

from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

_current: ContextVar["_Piece | None"] = ContextVar("vsr_progress_piece", default=None)


class _Piece:
    """Work worth `worth` units of `advance`: `add` counts parts of it, never more than the whole."""

    def __init__(self, advance, worth: float):
        self.advance, self.worth, self.spent = advance, worth, 0.0

    def add(self, amount: float) -> None:
        amount = min(amount, self.worth - self.spent)
        if amount > 0:
            self.spent += amount
            self.advance(amount)


@contextmanager
def within(advance, worth: float):
    """Work worth `worth` units of `advance` (a callable taking the units done): parts and frames
    finished inside count towards it, and what they left is added at its end."""
    piece = _Piece(advance, worth)
    token = _current.set(piece)
    try:
        yield
    finally:
        _current.reset(token)
    piece.add(piece.worth)  # what the work inside did not count itself (a runner with one output for all frames)


def part(fraction: float):
    """The next part of the current piece of work, worth `fraction` of it (0: work that brings the
    video no further, such as timing runtimes on probes)."""
    parent = _current.get()
    return nullcontext() if parent is None else within(parent.add, parent.worth * fraction)


def frame_done(frames: int) -> None:
    """One of the `frames` output frames of the current piece of work is finished."""
    parent = _current.get()
    if parent is not None:
        parent.add(parent.worth / frames)
