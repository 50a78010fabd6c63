"""resume=true: a killed run continues after its last complete segment, and the joined output equals
a run that was never stopped."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vsr.errors import UserError
from vsr.inference import run
from vsr.inference.resume import segments_folder
from vsr.inference.windows import plan_windows
from vsr.io.synthetic import write_test_video
from vsr.io.video import iter_frames, probe, scan_frames

# a run whose every input frame takes 50 ms more to read, so the test can kill it between segments
SLOW_RUN = """
import json, sys, time
import vsr.inference.video as job
from vsr.inference import run
read = job.stream_frames
job.stream_frames = lambda *args: ((time.sleep(0.05), frame)[1] for frame in read(*args))
run(json.loads(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from test_upscale import TINY_RECURRENT, tiny

    from vsr.export import export

    folder = tmp_path_factory.mktemp("weights")
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, folder)
    return folder


def options(clip: Path, out: Path, weights: Path, **more) -> dict:
    # crf=0: lossless, so equal frames decode equal whatever the segment boundaries
    return {"input": str(clip), "output": str(out), "weights": str(weights), "chunk": 4, "overlap": 2,
            "runtime": "eager", "progress": False, "crf": 0, "segment": 8, **more}


def kill_after_segments(opts: dict, count: int) -> None:
    """Run upscale in a subprocess and SIGKILL it once `count` segments are complete."""
    folder = segments_folder(Path(opts["output"]))
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, json.dumps(opts)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(folder.glob("seg-*.mp4"))) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()[-1500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_killed_run_resumes_after_its_last_segment_and_equals_an_unstopped_run(tmp_path, weights, capsys):
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=40, width=64, height=48)
    whole = run(options(clip, tmp_path / "whole.mp4", weights))
    out = tmp_path / "out.mp4"
    kill_after_segments(options(clip, out, weights, resume=True), 2)
    assert not out.exists()
    capsys.readouterr()
    resumed = run(options(clip, out, weights, resume=True))
    said = capsys.readouterr().err
    done = int(said.split("resuming after frame ")[1].split()[0])
    window_ends = {stop for fixed in (True, False) for _, _, stop, _ in plan_windows(40, 4, 2, fixed)}
    assert done >= 16 and done in window_ends, said  # two segments of 8+ frames, ending where a window ends
    assert resumed["computed_frames"] < whole["computed_frames"]  # the finished frames were not computed again
    a, b = list(iter_frames(tmp_path / "whole.mp4")), list(iter_frames(out))
    assert len(a) == len(b) == 40 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert scan_frames(out).times == scan_frames(tmp_path / "whole.mp4").times
    assert probe(out).has_audio and not segments_folder(out).exists()


def test_a_resumed_run_with_other_options_is_refused_and_a_plain_run_says_segments_wait(tmp_path, weights, capsys):
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=40, width=64, height=48)
    out = tmp_path / "out.mp4"
    kill_after_segments(options(clip, out, weights, resume=True), 1)
    with pytest.raises(UserError, match=r"resume=true: .*\.out\.mp4\.segments was made with another crf \(crf=0\)"):
        run(options(clip, out, weights, resume=True, crf=18))
    run(options(clip, out, weights))
    assert "holds the segments of a stopped resume=true run" in capsys.readouterr().err
    assert probe(out).num_frames == 40 and segments_folder(out).is_dir()  # left for resume=true
    with pytest.raises(UserError, match="resume=true does not combine with interpolate=2"):
        run(options(clip, tmp_path / "b.mp4", weights, resume=True, interpolate=2))


def test_a_resumed_run_of_a_variable_rate_video_keeps_every_frame_time(tmp_path, weights):
    """Segments hold times from 0 and the join moves them back: the same times as a run without segments."""
    from test_upscale import variable_rate_video

    clip = variable_rate_video(tmp_path / "vfr.mp4")
    run(options(clip, tmp_path / "whole.mp4", weights))
    run(options(clip, tmp_path / "out.mp4", weights, resume=True, segment=3))
    assert scan_frames(tmp_path / "out.mp4").times == scan_frames(tmp_path / "whole.mp4").times
    a, b = list(iter_frames(tmp_path / "whole.mp4")), list(iter_frames(tmp_path / "out.mp4"))
    assert len(a) == len(b) == 12 and all(np.array_equal(x, y) for x, y in zip(a, b))
