"""Mixed precision on the CPU: bf16 where the model's stored check passed and the CPU has native bf16;
flow estimation and the image skip stay fp32 inside the models."""

import json

import pytest
import torch

from vsr.inference import precision
from vsr.inference.upscaler import pick_precision
from vsr.models import RecurrentRRDBNet, RRDBNet

CPU = torch.device("cpu")


def write_check(folder, passed) -> None:
    (folder / precision.CHECK_FILE).write_text(json.dumps({"bf16": {"passed": passed}}))


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_only_for_a_passed_check_on_a_cpu_with_native_bf16(tmp_path, monkeypatch, native):
    monkeypatch.setattr("vsr.inference.upscaler.native_bf16", lambda: native)
    passed, failed, damaged, missing = (tmp_path / name for name in ("passed", "failed", "damaged", "missing"))
    for folder in (passed, failed, damaged, missing):
        folder.mkdir()
    write_check(passed, True)
    write_check(failed, False)
    (damaged / precision.CHECK_FILE).write_text("{not json")
    assert pick_precision("auto", CPU, passed) == ("bf16" if native else "fp32")
    for folder in (failed, damaged, missing, None):
        assert pick_precision("auto", CPU, folder) == "fp32"
    assert pick_precision("fp32", CPU, passed) == "fp32"  # an explicit choice is kept


def test_a_check_of_other_weights_is_not_a_pass(tmp_path, monkeypatch):
    monkeypatch.setattr("vsr.inference.upscaler.native_bf16", lambda: True)
    (tmp_path / "model.json").write_text(json.dumps({"weights": {"sha256": "abc"}}))
    for recorded, expected in (("abc", "bf16"), ("def", "fp32")):
        (tmp_path / precision.CHECK_FILE).write_text(json.dumps({"bf16": {"passed": True, "weights_sha256": recorded}}))
        assert pick_precision("auto", CPU, tmp_path) == expected


def test_the_verdict_allows_0_02_db_and_no_more_flicker():
    fp32 = {"psnr_y": [30.0, 40.0], "tof": [0.2, 0.4]}
    assert precision.verdict(fp32, {"psnr_y": [29.99, 39.99], "tof": [0.2, 0.4]})["passed"]
    assert not precision.verdict(fp32, {"psnr_y": [29.97, 39.97], "tof": [0.2, 0.4]})["passed"]  # -0.03 dB
    assert not precision.verdict(fp32, {"psnr_y": [30.0, 40.0], "tof": [0.21, 0.4]})["passed"]  # tOF +1.7%


def quiet_residual(model):
    """The model's learned residual set to zero: its output is then the bicubic skip alone."""
    last = [m for m in model.upsampler.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return model.eval()


@pytest.mark.parametrize("build", [
    lambda: RecurrentRRDBNet(num_feat=8, num_block=1, num_block_prop=1, num_grow_ch=4, flow_levels=2,
                             flow_channels=(8, 8)),
    lambda: RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
])
def test_under_bf16_the_image_skip_is_not_rounded(build):
    """bf16 rounding of the output image cost 0.2-0.3 dB on clean clips; the skip and the sum stay fp32."""
    torch.manual_seed(0)
    model = quiet_residual(build())
    lr = torch.rand(1, 3, 3, 16, 16)
    with torch.inference_mode():
        exact = model(lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(lr)
    assert mixed.dtype == torch.float32 and (mixed - exact).abs().max() < 1e-6


def test_under_bf16_the_flow_is_computed_in_fp32():
    torch.manual_seed(0)
    model = RecurrentRRDBNet(num_feat=8, num_block=1, num_block_prop=1, num_grow_ch=4, flow_levels=2,
                             flow_channels=(8, 8)).eval()
    lr = torch.rand(1, 3, 3, 32, 32)
    with torch.inference_mode():
        exact = model.compute_flows(lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model.compute_flows(lr)
    for a, b in zip(exact, mixed):
        assert b.dtype == torch.float32 and torch.equal(a, b)
