"""Losses: zero (or minimal) for identical inputs, growing with the difference."""

import pytest
import torch

from vsr.errors import UserError
from vsr.losses import (
    FrequencyLoss,
    GANLoss,
    PerceptualLoss,
    PingPongLoss,
    PixelLoss,
    TemporalConsistencyLoss,
    TextureLoss,
)
from vsr.losses.temporal import pingpong_clip


def clip(t=4, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 1, 3, h // 4, w // 4, generator=g)
    smooth = torch.nn.functional.interpolate(base[0], size=(h, w), mode="bicubic", align_corners=False)
    return smooth.clamp(0, 1).unsqueeze(1).expand(1, t, 3, h, w).contiguous()


@pytest.mark.parametrize("kind", ["l1", "charbonnier"])
def test_pixel_loss_zero_then_grows(kind):
    gt = clip()
    loss = PixelLoss(kind=kind)
    assert loss(gt, gt) == 0
    assert 0 < loss(gt + 0.01, gt) < loss(gt + 0.1, gt)


def test_perceptual_loss_zero_then_grows():
    """Plumbing test: random VGG19 backbone (ImageNet weights cannot be downloaded here)."""
    torch.manual_seed(0)
    loss = PerceptualLoss(pretrained=False, layer_weights={"conv2_2": 1.0, "relu3_1": 0.5})
    gt = clip(t=2)
    noise = torch.randn_like(gt)
    assert loss(gt, gt) == 0
    assert 0 < loss(gt + 0.02 * noise, gt) < loss(gt + 0.2 * noise, gt)


def test_perceptual_loss_without_weights_names_the_file(tmp_path):
    with pytest.raises(UserError, match=r"vgg19-dcbb9e9d\.pth.*loss\.perceptual\.weights_path"):
        PerceptualLoss(pretrained=True, weights_path=str(tmp_path / "vgg19-dcbb9e9d.pth"))


def test_perceptual_loss_loads_local_weights(tmp_path):
    from torchvision.models import vgg19

    torch.manual_seed(1)
    reference = vgg19(weights=None)
    path = tmp_path / "vgg19.pth"
    torch.save(reference.state_dict(), path)
    loss = PerceptualLoss(pretrained=True, weights_path=str(path), layer_weights={"conv1_2": 1.0})
    assert torch.equal(loss.features[0].weight, reference.features[0].weight)
    assert not loss.random_backbone


def test_unknown_vgg_layer_is_named():
    with pytest.raises(UserError, match="conv9_9"):
        PerceptualLoss(pretrained=False, layer_weights={"conv9_9": 1.0})


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge"])
@pytest.mark.parametrize("relativistic", [False, True])
def test_gan_losses_prefer_the_right_answer(kind, relativistic):
    loss = GANLoss(kind=kind, relativistic=relativistic, weight=1.0)
    real, fake = torch.full((4, 1), 3.0), torch.full((4, 1), -3.0)
    # the critic is right: its loss is lower than when it is wrong
    assert loss.discriminator_loss(real, fake) < loss.discriminator_loss(fake, real)
    # the generator is happier when its fakes are judged real
    assert loss.generator_loss(real, fake) < loss.generator_loss(fake, real)


def flicker(c, amount):
    jitter = torch.tensor([0.0, amount, -amount, amount])[: c.shape[1]].view(1, -1, 1, 1, 1)
    return (c + jitter).clamp(0, 1)


@pytest.mark.parametrize("flow", ["dis", "none"])
def test_temporal_loss_sees_flicker(flow):
    gt = moving_clip()
    loss = TemporalConsistencyLoss(flow=flow)
    assert loss(gt, gt) == 0
    mild, strong = loss(flicker(gt, 0.02), gt), loss(flicker(gt, 0.08), gt)
    assert 0 < mild < strong


def test_temporal_loss_forgives_real_motion_with_flow():
    """An SR clip that is GT's motion plus a fixed offset per frame (no flicker) costs nothing
    more than a static one with flow alignment."""
    gt = moving_clip()
    shifted = (gt * 0.9 + 0.05)  # same motion, different contrast: frame differences scale by 0.9
    flickery = flicker(gt, 0.05)
    loss = TemporalConsistencyLoss(flow="dis")
    assert loss(shifted, gt) < loss(flickery, gt)


def moving_clip(t=4, size=48):
    """A smooth pattern translated by one pixel per frame."""
    from skimage import data as skdata

    photo = torch.from_numpy(skdata.astronaut()[100:100 + size + t, 200:200 + size + t]).permute(2, 0, 1) / 255.0
    frames = [photo[:, i:i + size, i:i + size] for i in range(t)]
    return torch.stack(frames)[None].float()


def test_temporal_loss_needs_two_frames():
    with pytest.raises(UserError, match=r"loss\.temporal needs clips of at least 2 frames.*data\.num_frames"):
        TemporalConsistencyLoss(flow="none")(clip(t=1), clip(t=1))


def test_pingpong_loss_zero_for_consistent_sequence():
    seq = clip(t=4)
    sr = pingpong_clip(seq)  # a model that is consistent forwards and backwards returns this
    assert sr.shape[1] == 7
    assert PingPongLoss()(sr) == 0
    drifted = sr.clone()
    drifted[:, 4:] += 0.1  # the backward half drifts
    assert PingPongLoss()(drifted) > 0


def blurred_and_sharp_clips():
    """A GT clip with fine texture, the same clip blurred (what a PSNR model tends to produce) and the
    GT plus fresh noise of the same energy the blur removed (texture of the right kind, wrong pixels)."""
    gen = torch.Generator().manual_seed(0)
    gt = (0.5 + 0.2 * torch.randn(1, 2, 3, 48, 48, generator=gen)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(gt.flatten(0, 1), 3, 1, 1, count_include_pad=False).view_as(gt)
    other_texture = (0.5 + 0.2 * torch.randn(1, 2, 3, 48, 48, generator=gen)).clamp(0, 1)
    return gt, blurred, other_texture


def test_texture_loss_prefers_the_right_texture_to_a_blur_and_is_fixed_by_its_seed():
    gt, blurred, other_texture = blurred_and_sharp_clips()
    loss = TextureLoss(weight=1.0)
    assert float(loss(gt, gt)) == 0
    # same statistics, other pixels: close in texture although far in pixels; the blur is the opposite
    assert float(loss(other_texture, gt)) < 0.2 * float(loss(blurred, gt))
    assert float(PixelLoss()(other_texture, gt)) > float(PixelLoss()(blurred, gt))
    assert float(TextureLoss(weight=1.0)(blurred, gt)) == float(loss(blurred, gt))  # same filters every run
    assert float(TextureLoss(weight=1.0, seed=1)(blurred, gt)) != float(loss(blurred, gt))
    sr = blurred.clone().requires_grad_(True)
    loss(sr, gt).backward()
    assert sr.grad.abs().sum() > 0


def test_frequency_loss_is_zero_for_gt_and_penalises_a_blur():
    gt, blurred, _ = blurred_and_sharp_clips()
    loss = FrequencyLoss(weight=1.0)
    assert float(loss(gt, gt)) == 0 and float(loss(blurred, gt)) > 0
    assert float(FrequencyLoss(weight=2.0)(blurred, gt)) == pytest.approx(2 * float(loss(blurred, gt)))
