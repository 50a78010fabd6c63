"""NIQE: equal to scikit-video's reference implementation, and higher for less natural frames;
evaluate.py scores clips without ground truth on NIQE and warp error only."""

import av
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data as skdata

from vsr.evaluation.scoring import Scorer
from vsr.metrics.fidelity import rgb_to_y, to_levels
from vsr.metrics.niqe import niqe, niqe_luma

PHOTOS = ["astronaut", "coffee", "rocket"]


def photo_tensor(name: str) -> torch.Tensor:
    return torch.from_numpy(getattr(skdata, name)()).permute(2, 0, 1)[None]


def scipy_1_1_imresize(arr, size, interp="bilinear", mode=None):
    """`scipy.misc.imresize` as SciPy 1.1 defined it for a float scale and mode 'F' (what scikit-video
    calls); SciPy removed it, so scikit-video's NIQE cannot run without it."""
    image = Image.fromarray(np.asarray(arr, dtype=np.float32), mode="F")
    width, height = image.size
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[interp]
    return np.asarray(image.resize((int(width * size), int(height * size)), resample))


@pytest.fixture
def reference_niqe(monkeypatch):
    pytest.importorskip("skvideo")
    import scipy.misc

    monkeypatch.setattr(scipy.misc, "imresize", scipy_1_1_imresize, raising=False)
    monkeypatch.setattr(np, "int", int, raising=False)  # removed in NumPy 1.24, used by scikit-video
    from skvideo.measure import niqe as skvideo_niqe

    return skvideo_niqe


@pytest.mark.parametrize("name", PHOTOS)
def test_niqe_equals_scikit_video_on_real_photos(reference_niqe, name):
    luma = rgb_to_y(to_levels(photo_tensor(name)))[0, 0].numpy()
    expected = float(reference_niqe(luma[None])[0])
    assert niqe_luma(luma) == pytest.approx(expected, rel=1e-5)


def test_niqe_rises_when_a_photo_is_blurred_or_noisy():
    photo = photo_tensor("astronaut").float() / 255
    blurred = torch.from_numpy(ndimage.gaussian_filter(photo.numpy(), sigma=(0, 0, 2, 2)))
    noisy = (photo + 0.08 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    sharp, soft, grainy = (float(niqe(x)[0]) for x in (photo, blurred, noisy))
    assert soft > sharp + 1 and grainy > sharp + 1


def test_niqe_refuses_frames_below_two_patches():
    with pytest.raises(ValueError, match="194x194"):
        niqe_luma(np.zeros((150, 400)))


def test_scorer_without_ground_truth_computes_only_no_reference_metrics():
    frames = photo_tensor("astronaut").repeat(3, 1, 1, 1)
    values = Scorer(crop_border=4, lpips="off").score(frames, None)
    assert values["niqe"].shape == (3,) and values["warp_error"].shape == (2,)
    assert float(values["warp_error"].max()) < 0.5  # identical frames: nothing moves
    assert all(values[k] is None for k in ("psnr_y", "ssim_y", "psnr_rgb", "lpips", "tof", "tlp"))


def test_evaluate_scores_a_video_as_it_is_without_ground_truth(tmp_path):
    from test_evaluate import evaluate_in_process, write_video

    video = write_video(tmp_path / "pan.mp4", frames=4, width=64, height=64)
    metrics = evaluate_in_process(tmp_path / "run", ["model=bicubic", f"data.path={video}", "scale=4",
                                                     "ground_truth=false", "compare=[nearest]", "report.plots=false"])
    assert metrics["settings"]["ground_truth"] is False
    # a NIQE value means the 64x64 frames themselves were upscaled (to 256x256): x4 of a 16x16 LR made
    # from them would be below NIQE's 194x194
    for result in (metrics["mean"], metrics["baselines"]["nearest"]["mean"]):
        assert result["psnr_y"] is None and result["niqe"] is not None and result["warp_error"] is not None
    assert "ground_truth=false" in metrics["skipped"]["psnr_y"]


def test_evaluate_reports_the_gt_frames_own_niqe_beside_the_systems(tmp_path):
    from test_evaluate import evaluate_in_process, write_video

    video = write_video(tmp_path / "pan.mp4", frames=3, width=256, height=256)
    metrics = evaluate_in_process(tmp_path / "run", ["model=bicubic", f"data.path={video}", "scale=4",
                                                     "compare=[]", "report.plots=false"])
    truth = metrics["ground_truth_reference"]["mean"]
    assert set(truth) == {"niqe", "warp_error"}
    with av.open(str(video)) as container:  # the GT: the decoded frames, 4 border pixels cropped
        gt = torch.stack([torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in container.decode(video=0)])
    assert truth["niqe"] == pytest.approx(float(niqe(gt[..., 4:-4, 4:-4]).mean()), rel=1e-6)
    assert truth["niqe"] != pytest.approx(metrics["mean"]["niqe"], rel=1e-3)
    assert f"NIQE {truth['niqe']:.3f}" in (tmp_path / "run" / "report.md").read_text()
