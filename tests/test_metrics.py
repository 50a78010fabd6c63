"""Metrics against known answers: PSNR/SSIM (BasicSR conventions), optical flow, flicker, LPIPS loading."""

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vsr.errors import UserError
from vsr.evaluation.scoring import Scorer, clip_summary
from vsr.metrics import LpipsUnavailable, estimate_flow, load_lpips, psnr, rgb_to_y, ssim, tlp, tof, warp_error
from vsr.metrics.perceptual import ALEXNET_FILE
from vsr.models.alignment import flow_warp

PHOTO = skdata.astronaut()


def moving_clip(frames=8, h=48, w=64, dx=2, dy=1) -> torch.Tensor:
    """uint8 `(T, 3, H, W)`: a window panning over a photo by (dx, dy) pixels per frame."""
    crops = [PHOTO[100 + dy * t:100 + dy * t + h, 150 + dx * t:150 + dx * t + w] for t in range(frames)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def brightness_jitter(clip: torch.Tensor, amplitude: float) -> torch.Tensor:
    """Float clip with frame brightness alternating +amplitude / -amplitude (a worst-case flicker)."""
    signs = torch.tensor([(-1.0) ** t for t in range(clip.shape[0])]).view(-1, 1, 1, 1)
    return (clip.float() / 255 + amplitude * signs).clamp(0, 1)


@pytest.fixture(scope="module")
def random_lpips():
    """Plumbing only: LPIPS with a random AlexNet trunk (the real one cannot be downloaded here)."""
    return load_lpips(random_backbone=True)


# --- fidelity --------------------------------------------------------------------------------

def test_identical_frames_give_infinite_psnr_and_unit_ssim():
    clip = moving_clip(frames=3)
    for y_channel in (False, True):
        assert torch.isinf(psnr(clip, clip, crop_border=4, y_channel=y_channel)).all()
        assert torch.equal(ssim(clip, clip, crop_border=4, y_channel=y_channel), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("sigma", [3.0, 10.0])
def test_gaussian_noise_of_known_sigma_gives_the_expected_psnr(sigma):
    # Smooth mid-grey ramp, so noise never clips; 4x3x128x128 samples pin the MSE to ~0.3 %.
    ramp = torch.linspace(70, 180, 128, dtype=torch.float64)
    gt = (ramp.view(1, 1, 1, -1) + ramp.view(1, 1, -1, 1) * 0.2).expand(4, 3, 128, 128).round().to(torch.uint8)
    generator = torch.Generator().manual_seed(0)
    noisy = (gt.double() + sigma * torch.randn(gt.shape, generator=generator, dtype=torch.float64)).round()
    sr = noisy.clamp(0, 255).to(torch.uint8)
    # Rounding to 8 bits adds uniform noise of variance 1/12 to each sample.
    variance = sigma**2 + 1 / 12
    expected_rgb = 10 * math.log10(255**2 / variance)
    # Y = sum(w_c * RGB_c / 255) + 16 with independent noise per channel: variance scales by sum(w_c^2) / 255^2.
    expected_y = 10 * math.log10(255**2 / (variance * (65.481**2 + 128.553**2 + 24.966**2) / 255**2))
    assert psnr(sr, gt).mean().item() == pytest.approx(expected_rgb, abs=0.05)
    assert psnr(sr, gt, y_channel=True).mean().item() == pytest.approx(expected_y, abs=0.05)


@pytest.mark.parametrize("crop_border", [0, 4])
def test_rgb_psnr_and_ssim_agree_with_scikit_image(crop_border):
    gt = moving_clip(frames=2, h=96, w=128)
    generator = torch.Generator().manual_seed(1)
    sr = (gt.double() + 12 * torch.randn(gt.shape, generator=generator, dtype=torch.float64)).clamp(0, 255).round()
    sr = sr.to(torch.uint8)
    ours_psnr = psnr(sr, gt, crop_border=crop_border)
    ours_ssim = ssim(sr, gt, crop_border=crop_border)
    c = crop_border
    for t in range(2):
        a = gt[t].permute(1, 2, 0).numpy()[c:96 - c, c:128 - c]
        b = sr[t].permute(1, 2, 0).numpy()[c:96 - c, c:128 - c]
        assert ours_psnr[t].item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
        expected = structural_similarity(a, b, data_range=255, channel_axis=-1, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
        assert ours_ssim[t].item() == pytest.approx(expected, abs=1e-6)


def test_worked_y_channel_example():
    # Flat frames: GT RGB (100, 150, 200), SR (110, 150, 200).
    # By hand, with Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255:
    # Y_gt = 16 + 30824.25 / 255 = 136.87941, Y_sr = 16 + 31479.06 / 255 = 139.44729, so MSE_Y = 2.56788^2 = 6.59402
    # and PSNR_Y = 10 log10(65025 / 6.59402) = 39.9393 dB. In RGB only R differs: MSE = 100 / 3, PSNR = 32.9020 dB.
    gt = torch.tensor([100, 150, 200], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 24, 24)
    sr = torch.tensor([110, 150, 200], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 24, 24)
    assert rgb_to_y(gt.double())[0, 0, 0, 0].item() == pytest.approx(136.87941, abs=1e-5)
    assert psnr(sr, gt, crop_border=2, y_channel=True).item() == pytest.approx(39.9393, abs=1e-4)
    assert psnr(sr, gt, crop_border=2).item() == pytest.approx(32.9020, abs=1e-4)
    # Flat frames have no variance, so SSIM is the luminance term (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1) = 0.999827.
    assert ssim(sr, gt, y_channel=True).item() == pytest.approx(0.999827, abs=1e-6)
    # Studio range: black is 16, white is 235.
    ends = torch.tensor([[0.0, 0, 0], [255, 255, 255]], dtype=torch.float64).view(2, 3, 1, 1)
    assert rgb_to_y(ends).flatten().tolist() == pytest.approx([16.0, 235.0])


def test_border_crop_ignores_errors_at_the_border_and_float_frames_are_rounded_to_8_bits():
    gt = moving_clip(frames=1).float() / 255
    sr = gt.clone()
    sr[..., :3, :] = 0  # damage the top 3 rows only
    assert math.isfinite(psnr(sr, gt, crop_border=0).item())
    assert math.isinf(psnr(sr, gt, crop_border=3).item())
    # Less than half a level of difference disappears when frames are rounded, as when saved to PNG.
    assert math.isinf(psnr((gt + 0.4 / 255).clamp(0, 1), gt).item())
    assert math.isfinite(psnr((gt + 0.6 / 255).clamp(0, 1), gt).item())


def test_bad_inputs_fail_with_one_clear_line():
    clip = moving_clip(frames=2)
    with pytest.raises(UserError, match=r"SR is 2 frames of 64x48, GT is 2 frames of 60x48") as err:
        psnr(clip, clip[..., :60])
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="empty clip"):
        ssim(clip[:0], clip[:0])
    with pytest.raises(UserError, match="smaller than the 11x11 SSIM window"):
        ssim(clip[..., :14, :14], clip[..., :14, :14], crop_border=2)
    with pytest.raises(UserError, match="too small to crop 30 pixels"):
        psnr(clip, clip, crop_border=30)


# --- optical flow ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_flow_of_a_known_translation_and_its_warp_convention(method):
    clip = moving_clip(frames=2, h=96, w=128, dx=3, dy=1)  # content moves left 3 and up 1 per frame
    prev, nxt = clip[:1], clip[1:]
    flow = estimate_flow(prev, nxt, method)
    assert flow.shape == (1, 2, 96, 128) and flow.dtype == torch.float32
    inner = flow[..., 16:-16, 16:-16]
    assert inner[0, 0].median().item() == pytest.approx(-3, abs=0.3)
    assert inner[0, 1].median().item() == pytest.approx(-1, abs=0.3)
    # Documented convention: flow_warp(next, flow) rebuilds prev.
    rebuilt = flow_warp(nxt.float(), flow)
    assert (rebuilt - prev.float())[..., 16:-16, 16:-16].abs().mean().item() < 3.0
    assert estimate_flow(prev[0], nxt[0], method).shape == (2, 96, 128)


# --- flicker ---------------------------------------------------------------------------------

def test_flicker_is_zero_on_identical_clips_and_near_zero_on_a_static_clip(random_lpips):
    moving = moving_clip(frames=4)
    assert torch.equal(tof(moving, moving), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(tlp(moving, moving, random_lpips), torch.zeros(3, dtype=torch.float64))
    static = moving_clip(frames=4, dx=0, dy=0)
    assert warp_error(static).max().item() < 0.05  # 8-bit levels
    assert tof(static, static).max().item() == 0


def test_flicker_grows_with_brightness_jitter(random_lpips):
    gt = moving_clip(frames=6)
    amplitudes = [0.0, 0.02, 0.05, 0.1]
    jittered = [brightness_jitter(gt, a) for a in amplitudes]
    warp = [warp_error(j).mean().item() for j in jittered]
    flow_gap = [tof(j, gt).mean().item() for j in jittered]
    perceptual_gap = [tlp(j, gt, random_lpips).mean().item() for j in jittered]  # plumbing: random backbone
    for values in (warp, flow_gap, perceptual_gap):
        assert values == sorted(values) and values[-1] > values[0], values
    assert warp[-1] > 5 * warp[0]


def test_flicker_ranks_a_jittery_sr_clip_worse_than_a_smooth_one(random_lpips):
    gt = moving_clip(frames=6, h=96, w=128)
    lr = torch.nn.functional.interpolate(gt.float() / 255, scale_factor=0.25, mode="bicubic", antialias=True)
    smooth = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic").clamp(0, 1)
    # Same SR frames, but each one with its own brightness (+-10 %) and a one-pixel wobble. Not a smaller
    # jitter: tLP is the gap to GT's own perceptual change, and this blurry SR changes less than GT, so a
    # faint flicker (+-3 %) can close that gap and lower tLP (measured with the random backbone).
    jittery = brightness_jitter((smooth * 255).round().to(torch.uint8), 0.1)
    jittery = torch.stack([torch.roll(f, shifts=(t % 2, (t + 1) % 2), dims=(1, 2)) for t, f in enumerate(jittery)])
    for metric in (lambda sr: tof(sr, gt), lambda sr: tlp(sr, gt, random_lpips), warp_error):
        assert metric(jittery).mean() > metric(smooth).mean()


# --- LPIPS loading ---------------------------------------------------------------------------

def test_lpips_loads_the_alexnet_backbone_from_a_configured_file(tmp_path):
    torch.manual_seed(0)
    features = {f"features.{k}": v for k, v in _alexnet_features().state_dict().items()}
    path = tmp_path / ALEXNET_FILE
    torch.save(features, path)
    model = load_lpips(path)
    assert torch.equal(model.net.slice2.get_submodule("3").weight, features["features.3.weight"])
    frames = moving_clip(frames=2)
    assert model(frames.float() / 255, frames.float() / 255, normalize=True).abs().max().item() == 0

    torch.save({"classifier.1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(LpipsUnavailable, match="not a torchvision AlexNet checkpoint"):
        load_lpips(tmp_path / "other.pth")
    with pytest.raises(LpipsUnavailable, match="file not found"):
        load_lpips(tmp_path / "missing.pth")


def test_missing_backbone_skips_lpips_and_tlp_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    scorer = Scorer(crop_border=4, lpips="auto")
    clip = moving_clip(frames=3)
    summary = clip_summary(scorer.score(clip, clip))
    assert summary["lpips"] is None and summary["tlp"] is None
    assert ALEXNET_FILE in scorer.skipped["lpips"] and "lpips_backbone" in scorer.skipped["tlp"]
    assert math.isinf(summary["psnr_y"]) and summary["ssim_y"] == 1.0 and summary["tof"] == 0.0


def _alexnet_features():
    from torchvision.models import alexnet

    return alexnet().features


def test_raft_flow_reads_weights_from_disk_and_keeps_the_convention_shape(tmp_path):
    """Plumbing with a randomly initialised RAFT-small (the real weights cannot be downloaded here)."""
    from torchvision.models.optical_flow import raft_small

    from vsr.metrics.flow import RAFT_FILE, RaftFlow

    torch.manual_seed(0)
    torch.save(raft_small(weights=None).state_dict(), tmp_path / RAFT_FILE)
    raft = RaftFlow(tmp_path / RAFT_FILE, iterations=2)
    clip = moving_clip(frames=3, h=45, w=61)  # not multiples of 8: padded inside, cropped back
    flow = estimate_flow(clip[:-1], clip[1:], raft)
    assert flow.shape == (2, 2, 45, 61) and torch.isfinite(flow).all()
    assert warp_error(clip, raft).shape == (2,)
    with pytest.raises(UserError, match=f"metrics.flow=raft needs {RAFT_FILE}"):
        Scorer(flow="raft", flow_weights=str(tmp_path / "missing.pth"))
