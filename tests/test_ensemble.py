"""Self-ensemble (vsr/inference/ensemble.py): each symmetry is undone exactly, and averaging is what it promises."""

import pytest
import torch
from torch.nn import functional as F

from tests.tiny_models import tiny
from vsr.errors import UserError
from vsr.inference.ensemble import TRANSFORMS, SelfEnsemble, _apply, _undo
from vsr.inference.upscaler import Upscaler


def nearest_x2(clip: torch.Tensor) -> torch.Tensor:
    """Commutes with every flip and transpose: the ensemble must return it unchanged."""
    return F.interpolate(clip.flatten(0, -4), scale_factor=2, mode="nearest").unflatten(0, clip.shape[:-3])


def test_every_transform_is_undone():
    x = torch.rand(1, 2, 3, 5, 7)
    assert len(set(TRANSFORMS)) == 8 and TRANSFORMS[0] == (False, False, False)
    for t in TRANSFORMS:
        assert torch.equal(_undo(_apply(x, *t), *t), x), t


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_an_equivariant_model_is_unchanged(size):
    x = torch.rand(1, 3, 3, 6, 10)
    assert torch.allclose(SelfEnsemble(nearest_x2, size)(x), nearest_x2(x), atol=1e-6)


def test_the_ensemble_averages_the_symmetric_copies():
    # a model that adds a left-to-right ramp: flipped and un-flipped, the two copies' ramps sum to a constant
    ramp = torch.linspace(0, 1, 8)

    def ramped(clip):
        return clip + ramp.to(clip)[: clip.shape[-1]] if clip.shape[-1] == 8 else clip + ramp.mean()

    x = torch.rand(1, 2, 3, 8, 8)
    assert torch.allclose(SelfEnsemble(ramped, 2)(x), x + 0.5, atol=1e-6)
    assert not torch.allclose(SelfEnsemble(ramped, 1)(x), x + 0.5, atol=1e-3)


def test_upscaler_ensemble_costs_size_calls_and_rejects_other_sizes():
    model = tiny({"_target_": "vsr.models.RRDBNet", "scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 4})
    calls = []

    up = Upscaler(model, 2, temporal=False, device="cpu", runtime="eager", ensemble=4)
    original = up.ensemble.run
    up.ensemble.run = lambda clip, **options: calls.append(tuple(clip.shape)) or original(clip, **options)
    out = up.upscale_clip(torch.rand(2, 3, 6, 10))
    assert out.shape == (2, 3, 12, 20) and len(calls) == 4
    with pytest.raises(UserError, match="ensemble=3 must be one of 1, 2, 4, 8"):
        Upscaler(model, 2, temporal=False, device="cpu", ensemble=3)
