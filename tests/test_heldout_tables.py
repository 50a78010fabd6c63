"""experiments/corpus/heldout.py's tables: the mean over all clips, and the mean without the test clips an
earlier stage of the single-frame models trained on (experiments/corpus/README.md)."""

import importlib.util

from tests.conftest import ROOT


def load_heldout():
    spec = importlib.util.spec_from_file_location("heldout", ROOT / "experiments" / "corpus" / "heldout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(clips: dict[str, float]) -> dict:
    """One condition: bicubic at 30 dB on every clip, a model at the PSNR-Y given per clip."""
    return {clip: {"clean": {"bicubic": {"psnr_y": 30.0, "tof": 0.5, "niqe": 20.0},
                             "model": {"psnr_y": psnr, "tof": 0.4, "niqe": 19.0}}} for clip, psnr in clips.items()}


def mean_rows(table: str) -> list[str]:
    return [line for line in table.splitlines() if line.startswith("| **mean")]


def test_the_unseen_mean_leaves_out_the_clips_trained_on():
    heldout = load_heldout()
    seen = heldout.SEEN_IN_TRAINING[0]
    rows = mean_rows(heldout.table(results({seen: 34.0, "clip_a": 31.0, "clip_b": 32.0}), "clean"))
    assert len(rows) == 2
    assert "32.33 (+2.33)" in rows[0]  # all three clips
    assert f"without {seen}" in rows[1] and "31.50 (+1.50)" in rows[1]  # the two unseen ones only


def test_no_second_mean_when_no_clip_or_every_clip_was_trained_on():
    heldout = load_heldout()
    assert len(mean_rows(heldout.table(results({"clip_a": 31.0, "clip_b": 33.0}), "clean"))) == 1
    assert len(mean_rows(heldout.table(results({c: 31.0 for c in heldout.SEEN_IN_TRAINING}), "clean"))) == 1
