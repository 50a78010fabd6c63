"""The bicubic skip as a low-resolution convolution equals PyTorch's bicubic interpolation."""

import pytest
import torch
from torch.nn import functional as F

from vsr.models.bicubic import bicubic_upsample, phase_taps
from vsr.models.rrdb import upsample_frames


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("size", [(1, 1), (2, 5), (17, 23)])
def test_equals_torch_bicubic_including_borders(scale, size):
    torch.manual_seed(scale)
    x = torch.rand(2, 3, *size) * 2 - 0.5  # values outside [0, 1] too: no clamping anywhere
    expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    assert bicubic_upsample(x, scale).shape == expected.shape
    assert (bicubic_upsample(x, scale) - expected).abs().max() < 1e-5
    assert torch.equal(upsample_frames(x, scale), bicubic_upsample(x, scale))


def test_each_phase_is_a_partition_of_unity():
    for scale in (2, 3, 4, 8):
        taps = phase_taps(scale)
        assert torch.allclose(taps.sum(1), torch.ones(scale, dtype=taps.dtype))  # flat stays flat
        assert (taps != 0).sum(1).max() == 4  # four cubic taps per phase, within the 5-tap window
