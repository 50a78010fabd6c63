"""The model descriptor: each generator says what it is (task, scale, temporal, size multiple, partial
reconstruction); export.py writes it into model.json, `load` returns it, and the pipeline acts on it."""

import json

import pytest
import torch
from tiny_models import tiny

from vsr.errors import UserError
from vsr.export import export
from vsr.inference import Upscaler, load
from vsr.models.descriptor import ModelDescriptor, describe
from vsr.models.interp import IFNetLite

RECURRENT = {"_target_": "vsr.models.RecurrentRRDBNet", "scale": 4, "num_feat": 8, "num_block": 1,
             "num_block_prop": 1, "num_grow_ch": 4, "flow_levels": 3}
X2_UNSHUFFLE = {"_target_": "vsr.models.RRDBNet", "scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
                "upsampler": "nearest_conv"}
BASICVSR = {"_target_": "vsr.models.basicvsr.BasicVSR", "scale": 4, "num_feat": 8, "num_block": 1}
CASES = {
    "recurrent": (RECURRENT, ModelDescriptor(scale=4, temporal=True, partial_reconstruction=True)),
    "single-frame x2, pixel_unshuffle": (X2_UNSHUFFLE, ModelDescriptor(scale=2, temporal=False, size_multiple=2)),
    "basicvsr": (BASICVSR, ModelDescriptor(scale=4, temporal=True)),
}


@pytest.mark.parametrize("case", CASES)
def test_model_json_records_the_descriptor_and_load_returns_it(case, tmp_path):
    config, expected = CASES[case]
    model = tiny(config)
    assert describe(model) == expected
    export(model, config, tmp_path / "exp")
    written = json.loads((tmp_path / "exp" / "model.json").read_text())
    assert {k: written[k] for k in ("task", "scale", "temporal", "size_multiple", "partial_reconstruction")} == \
        expected.__dict__
    assert load(tmp_path / "exp")[1]["descriptor"] == expected
    up = Upscaler.from_dir(tmp_path / "exp", device="cpu", runtime="eager")
    assert (up.scale, up.temporal, up.multiple, up.partial) == (expected.scale, expected.temporal,
                                                                 expected.size_multiple, expected.partial_reconstruction)


def test_an_odd_size_is_padded_to_the_descriptors_multiple(tmp_path):
    model = tiny(X2_UNSHUFFLE)
    up = Upscaler(model, 2, device="cpu", runtime="eager")  # temporal and multiple from the descriptor
    assert not up.temporal and up.multiple == 2
    out = up.upscale_clip(torch.rand(2, 3, 13, 9))
    assert out.shape == (2, 3, 26, 18)


def test_an_interpolator_export_is_refused_as_weights_in_one_line(tmp_path):
    model = IFNetLite(num_feat=(8, 8), scales=(2, 1), num_conv=1, refine_feat=0)
    config = {"_target_": "vsr.models.interp.IFNetLite", "num_feat": [8, 8], "scales": [2, 1], "num_conv": 1,
              "refine_feat": 0}
    meta = export(model, config, tmp_path / "interp")
    assert (meta["task"], meta["scale"]) == ("interpolation", None)
    with pytest.raises(UserError, match="holds a frame interpolator, not an upscaler; pass it as interpolator="):
        Upscaler.from_dir(tmp_path / "interp", device="cpu")


def test_a_module_without_a_descriptor_is_a_temporal_upscaler_of_its_scale():
    class Foreign(torch.nn.Module):
        scale = 3

    assert describe(Foreign()) == ModelDescriptor(scale=3, temporal=True)
    with pytest.raises(ValueError, match="task 'denoising'"):
        ModelDescriptor(task="denoising")


def test_every_shipped_model_json_records_its_descriptor():
    """The shipped models were exported before model.json held the descriptor; a reader of the file
    (another tool, a user) must find there what `load` returns."""
    from dataclasses import asdict

    from vsr.inference.shipped import WEIGHTS_ROOT

    files = sorted(WEIGHTS_ROOT.rglob("model.json"))
    assert len(files) >= 6
    for path in files:
        _, meta = load(path.parent)
        recorded = json.loads(path.read_text())
        assert {k: recorded.get(k) for k in asdict(meta["descriptor"])} == asdict(meta["descriptor"]), path
