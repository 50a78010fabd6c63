"""Progress of upscale.py on stderr: a tqdm bar on a terminal, a plain line now and then in a log.

Work is counted in units (frames, stills) that finish in fractions: the Upscaler runs each window as
one piece of work (`Progress.piece`) and the runners call `vsr.work.frame_done` as each output frame
leaves the model (`vsr.runtimes.runners.fill_clip`), within the `part`s that the self-ensemble, tiles and
chained passes split a window into. So the bar moves frame by frame while a window is computed
instead of jumping when its frames come out together (it pauses only while a recurrent model
propagates a window, before its first frame). The rate counts only whole pieces finished after
the last preparation `step` (timing runtimes, compiling graphs): no ETA before one was timed.
"""

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

from vsr.work import within

PLAIN_INTERVAL = 30.0  # seconds between progress lines when stderr is not a terminal (a log file)

_listener: ContextVar["Callable[[Progress], None] | None"] = ContextVar("vsr_progress_listener", default=None)


@contextmanager
def observed(listener: "Callable[[Progress], None]"):
    """Every `Progress` made inside (in this thread) also calls `listener(progress)` as it moves and
    on each preparation step: how the web page shows a job's progress. An exception the listener
    raises stops the job where it is; KeyboardInterrupt cancels it as Ctrl-C does (no output left)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def clock(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{s:02d}" if minutes >= 60 else f"{minutes}:{s:02d}"


class Progress:
    """`total` units (`unit`: "frame", "still") done so far, with the rate and an ETA, on `file`
    (stderr): a tqdm bar where it is a terminal, else a line every `PLAIN_INTERVAL` seconds and
    one at the end. `enabled=False`: silent."""

    def __init__(self, total: int, desc: str, unit: str = "frame", enabled: bool = True, file=None):
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.file = file or sys.stderr
        self.done = 0.0
        self.rate: float | None = None  # units/s over whole pieces since `since`
        self.listener, self.last_step = _listener.get(), ""
        self.start = self.printed = time.perf_counter()
        self.since = (self.start, 0.0)  # (time, done) the rate is measured from
        self.bar = None
        if enabled and self.file.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.status(), file=self.file, dynamic_ncols=True, miniters=0,
                            bar_format="{desc} |{bar}|")

    def status(self) -> str:
        """`upscale:  50% 12/24 frames [0:31, 2.6 s/frame, ETA 0:31]`: the rate and ETA once a piece was timed."""
        text = (f"{self.desc}: {100 * self.done / max(1, self.total):3.0f}% {int(self.done + 1e-6)}/{self.total} "
                f"{self.unit}s [{clock(time.perf_counter() - self.start)}")
        if self.rate:
            text += f", {self.rate:.2f} {self.unit}s/s" if self.rate >= 1 else f", {1 / self.rate:.1f} s/{self.unit}"
            if self.done < self.total:
                text += f", ETA {clock((self.total - self.done) / self.rate)}"
        return text + "]"

    def show(self, force: bool = False) -> None:
        if self.listener is not None:
            self.listener(self)
        if self.bar is not None:
            self.bar.set_description_str(self.status(), refresh=False)
            self.bar.update(self.done - self.bar.n)  # tqdm redraws at most every 0.1 s
        elif self.enabled and (force or time.perf_counter() - self.printed >= PLAIN_INTERVAL):
            self.printed = time.perf_counter()
            print(self.status(), file=self.file, flush=True)

    def advance(self, amount: float) -> None:
        self.done = min(self.total, self.done + amount)
        self.show()

    @contextmanager
    def piece(self, worth: float):
        """Work worth `worth` units (a window's kept frames, a still): frames finished inside advance
        the count; what they left is added at its end, and the rate is measured over whole pieces."""
        with within(self.advance, worth):
            yield
        started, base = self.since
        if self.done > base:
            self.rate = (self.done - base) / max(1e-9, time.perf_counter() - started)
        self.show()

    def note(self, message: str) -> None:
        """A line of its own (above the bar)."""
        if self.bar is not None:
            self.bar.write(message, file=self.file)
        elif self.enabled:
            print(message, file=self.file, flush=True)

    def step(self, message: str) -> None:
        """A preparation step (timing runtimes, compiling a graph): said on its own line; the rate
        is measured afresh from here."""
        self.note(message)
        self.since, self.rate, self.last_step = (time.perf_counter(), self.done), None, message
        if self.listener is not None:
            self.listener(self)

    def close(self) -> None:
        self.listener = None  # closing is cleanup: a cancel raised now would leave it half done
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self.show(force=True)
        self.bar, self.enabled = None, False
