"""Generators and discriminators: shapes for every scale, gradient flow, weight layouts."""

import pytest
import torch

from vsr.errors import UserError
from vsr.models import RecurrentRRDBNet, RRDBNet, SpatioTemporalDiscriminator, UNetDiscriminatorSN
from vsr.models.alignment import SpyNet, flow_warp

TINY_RECURRENT = dict(num_feat=8, num_block=1, num_block_prop=1, num_grow_ch=4, flow_levels=3,
                      flow_channels=(8, 8, 4))
TINY_RRDB = dict(num_feat=8, num_block=1, num_grow_ch=4)
# The default preset's layout (residual propagation, half-size flow, low-resolution upsampler), tiny.
TINY_FAST = dict(TINY_RECURRENT, prop_block="residual", flow_downscale=2, upsampler="pixelshuffle_lr")


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("alignment", ["flow", "none"])
def test_recurrent_output_shape(scale, alignment):
    model = RecurrentRRDBNet(scale=scale, alignment=alignment, **TINY_RECURRENT)
    lr = torch.rand(2, 3, 3, 12, 10)
    assert model(lr).shape == (2, 3, 3, 12 * scale, 10 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_fast_recurrent_output_shape(scale):
    model = RecurrentRRDBNet(scale=scale, **TINY_FAST)
    lr = torch.rand(1, 3, 3, 13, 10)  # odd size: the half-size flow is resized back exactly
    assert model(lr).shape == (1, 3, 3, 13 * scale, 10 * scale)


def test_half_size_flow_is_in_full_size_pixels():
    """Flow on half-size frames is scaled back: a 2-pixel shift estimated at half size reads 2, not 1."""
    model = RecurrentRRDBNet(scale=2, **TINY_FAST)
    calls = []

    def fake_spynet(ref, supp):
        calls.append(ref.shape)
        return torch.ones(ref.shape[0], 2, *ref.shape[-2:])  # 1 pixel at the size it was given

    model.spynet.forward = fake_spynet
    to_next, to_prev = model.compute_flows(torch.rand(1, 3, 3, 16, 12))
    assert calls[0][-2:] == (8, 6)
    assert to_next.shape == (1, 2, 2, 16, 12) and torch.allclose(to_next, torch.full_like(to_next, 2.0))


def test_default_preset_is_cheap():
    """The shipped preset must stay fast: under 30 GFLOP per 320x180 frame at x4 (the budget
    that lets eager PyTorch match Real-ESRGAN's compact video model on 2 CPU cores)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from torch.utils.flop_counter import FlopCounterMode

    cfg = OmegaConf.load("conf/model/recurrent_rrdb.yaml")
    model = instantiate(cfg, scale=4).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 2, 3, 180, 320))
    gflop_per_frame = counter.get_total_flops() / 2 / 1e9
    assert 5 < gflop_per_frame < 30


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("upsampler", ["pixelshuffle", "pixelshuffle_lr", "nearest_conv"])
def test_rrdb_output_shape(scale, upsampler):
    model = RRDBNet(scale=scale, upsampler=upsampler, **TINY_RRDB)
    lr = torch.rand(1, 2, 3, 12, 10)
    assert model(lr).shape == (1, 2, 3, 12 * scale, 10 * scale)


@pytest.mark.parametrize("make", [lambda: RecurrentRRDBNet(scale=4, **TINY_RECURRENT),
                                  lambda: RecurrentRRDBNet(scale=4, **TINY_FAST), lambda: RRDBNet(scale=4, **TINY_RRDB),
                                  lambda: RRDBNet(scale=4, trunk_block="residual", **TINY_RRDB),
                                  lambda: RecurrentRRDBNet(scale=4, trunk_block="residual", **TINY_FAST)],
                         ids=["recurrent", "recurrent-fast", "rrdb", "residual-trunk", "recurrent-residual-trunk"])
def test_gradients_reach_every_parameter(make):
    torch.manual_seed(0)
    model = make()
    for _ in range(3):  # gradients summed over a few clips: a unit dead on one tiny clip by chance is not a break
        model(torch.rand(1, 3, 3, 64, 64)).pow(2).mean().backward()  # the coarsest flow level sees 4x4 or more
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


def test_recurrent_uses_both_neighbours():
    """Bidirectional propagation: changing the last frame changes the first output and vice versa."""
    torch.manual_seed(0)
    model = RecurrentRRDBNet(scale=2, alignment="none", **TINY_RECURRENT).eval()
    lr = torch.rand(1, 4, 3, 8, 8)
    changed = lr.clone()
    changed[:, -1] += 0.5
    with torch.no_grad():
        base, out = model(lr), model(changed)
    assert (base[:, 0] - out[:, 0]).abs().max() > 0  # backward pass carried it to frame 0
    changed = lr.clone()
    changed[:, 0] += 0.5
    with torch.no_grad():
        out = model(changed)
    assert (base[:, -1] - out[:, -1]).abs().max() > 0  # forward pass carried it to the end


def test_global_skip_starts_near_bicubic():
    from vsr.models.rrdb import upsample_frames

    model = RecurrentRRDBNet(scale=4, **TINY_RECURRENT)
    lr = torch.rand(1, 2, 3, 8, 8)
    bicubic = upsample_frames(lr[0], 4)
    assert (model(lr)[0] - bicubic).abs().mean() < 0.05


def test_residual_trunk_has_plain_convolutions_only():
    """trunk_block="residual": no dense blocks (no concatenation, no growth-channel convolutions),
    every trunk convolution num_feat -> num_feat; a typo is one clear error."""
    model = RRDBNet(scale=4, num_feat=16, num_block=3, trunk_block="residual")
    convs = [m for m in model.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 * 2 + 1 and all(c.in_channels == c.out_channels == 16 for c in convs)
    assert model(torch.rand(1, 2, 3, 10, 12)).shape == (1, 2, 3, 40, 48)
    with pytest.raises(UserError, match=r"model.trunk_block=dense is not supported; choose one of: rrdb, residual"):
        RRDBNet(scale=4, trunk_block="dense", **TINY_RRDB)


def test_unknown_scale_is_one_clear_error():
    with pytest.raises(UserError, match=r"scale=5 is not supported; choose one of: 2, 3, 4, 8"):
        RRDBNet(scale=5, **TINY_RRDB)


def test_flow_warp_moves_content():
    img = torch.zeros(1, 1, 8, 8)
    img[..., 3, 5] = 1
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0  # each output pixel samples 2 pixels to the right
    assert flow_warp(img, flow)[0, 0, 3, 3] == 1


def test_spynet_loads_basicsr_layout(tmp_path):
    """The 6-level SpyNet has BasicSR's parameter names, so its weight file loads."""
    reference = SpyNet()
    path = tmp_path / "spynet.pth"
    torch.save({"params": reference.state_dict()}, path)
    loaded = SpyNet(weights_path=str(path))
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(a, b), reference(a, b))
    with pytest.raises(UserError, match="spynet_path"):
        SpyNet(num_levels=3, channels=(8, 8), weights_path=str(path))


def test_unet_discriminator_shape():
    d = UNetDiscriminatorSN(num_feat=8)
    assert d(torch.rand(2, 3, 3, 32, 24)).shape == (2, 3, 1, 32, 24)
    with pytest.raises(UserError, match="multiple of 8"):
        d(torch.rand(1, 1, 3, 30, 32))


def test_spatiotemporal_discriminator_judges_triplets():
    d = SpatioTemporalDiscriminator(num_feat=8)
    assert d(torch.rand(2, 5, 3, 16, 16)).shape == (2, 3, 1, 16, 16)
    with pytest.raises(UserError, match="at least 3 frames"):
        d(torch.rand(1, 2, 3, 16, 16))


def test_split_dense_blocks_compute_the_same_network_without_concatenation():
    """The ncnn export's form of the dense blocks: same outputs (random weights and biases, so every
    weight slice matters), and no `torch.cat` left in the traced graph."""
    from vsr.models.split_dense import SplitDenseBlock, split_dense_blocks

    torch.manual_seed(0)
    model = RRDBNet(scale=2, num_feat=8, num_block=2, num_grow_ch=4).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    split = split_dense_blocks(model)
    assert sum(isinstance(m, SplitDenseBlock) for m in split.modules()) == 6  # 2 RRDBs x 3 dense blocks
    x = torch.rand(1, 2, 3, 12, 10)
    with torch.no_grad():
        assert torch.allclose(split(x), model(x), atol=1e-5)
        graph = torch.jit.trace(split.trunk.body[0].rdb1, torch.rand(1, 8, 6, 6)).inlined_graph
    assert "aten::cat" not in str(graph)
