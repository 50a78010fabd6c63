"""BasicVSR and BasicVSR++ (vsr.models.basicvsr): equal to BasicSR's implementation (basicsr-fixed, a
test-only dependency) with the same random weights, imported from BasicSR and MMagic checkpoint layouts
by export.py, and run like every other model (export folder, Upscaler, training steps)."""

import re
import warnings
from pathlib import Path
from unittest import mock

import pytest
import torch

from vsr.errors import UserError
from vsr.export import run as export_run
from vsr.inference.upscaler import Upscaler
from vsr.models.convert_basicvsr import load_basicvsr

basicsr_archs = pytest.importorskip("basicsr.archs", reason="basicsr-fixed (pip install .[dev]) is the reference")


def reference(kind: str, seed: int = 0) -> torch.nn.Module:
    """BasicSR's model at 16 channels and 2 blocks with random weights (its CPU build of BasicVSR++ drops
    the deformable alignment unless CUDA is reported, so CUDA is reported while it is built)."""
    from basicsr.archs.basicvsr_arch import BasicVSR
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus

    torch.manual_seed(seed)
    with warnings.catch_warnings(), mock.patch("torch.cuda.is_available", return_value=True):
        warnings.simplefilter("ignore")
        model = BasicVSR(num_feat=16, num_block=2) if kind == "basicvsr" else BasicVSRPlusPlus(16, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)  # every tensor non-trivial, the offset convolutions included
    return model.eval()


def mmagic_layout(state: dict) -> dict:
    """BasicSR names -> MMagic's (`generator.` prefix, ConvModule `.conv`, PixelShufflePack, resblocks)."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^spynet\.basic_module\.(\d+)\.basic_module\.(\d+)\.",
                     lambda m: f"spynet.basic_module.{m[1]}.basic_module.{int(m[2]) // 2}.conv.", key)
        key = re.sub(r"^(backward|forward)_trunk\.", r"\1_resblocks.", key)
        key = re.sub(r"^upconv(\d)\.", r"upsample\1.upsample_conv.", key)
        out[f"generator.{key}"] = value
    return {"state_dict": out, "meta": {}}


@pytest.mark.parametrize("kind", ["basicvsr", "basicvsr_pp"])
@pytest.mark.parametrize("layout", ["basicsr", "mmagic"])
def test_imported_weights_give_basicsr_output(kind, layout):
    ref = reference(kind)
    content = {"params": ref.state_dict()} if layout == "basicsr" else mmagic_layout(ref.state_dict())
    model, config = load_basicvsr(content)
    assert config["num_feat"] == 16 and config["num_block"] == 2
    x = torch.rand(1, 5, 3, 64, 72)  # BasicSR's SPyNet needs 64 pixels; 5 frames: second-order terms run
    with torch.no_grad():
        error = (model(x) - ref(x)).abs().max().item()
    print(f"{kind} ({layout} layout): max abs difference to BasicSR {error:.1e}")
    assert error < 1e-4


def test_a_weights_file_exports_and_upscales_as_basicsr_computes(tmp_path):
    ref = reference("basicvsr_pp", seed=1)
    torch.save({"params_ema": ref.state_dict()}, tmp_path / "basicvsrpp.pth")
    export_run({"checkpoint": str(tmp_path / "basicvsrpp.pth"), "output_dir": str(tmp_path / "export")})
    upscaler = Upscaler.from_dir(tmp_path / "export", device="cpu", runtime="eager", chunk=6, overlap=2)
    clip = torch.rand(6, 3, 64, 64)
    with torch.no_grad():
        expected = ref(clip[None])[0].clamp(0, 1)
    assert (upscaler.upscale_clip(clip) - expected).abs().max().item() < 1e-4
    import json
    meta = json.loads((tmp_path / "export" / "model.json").read_text())
    assert meta["source"]["kind"] == "basicvsr-import" and meta["architecture"]["_target_"].endswith("BasicVSRPlusPlus")


def test_other_weights_are_refused_in_one_line(tmp_path):
    ref = reference("basicvsr")
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("fusion.")}
    with pytest.raises(UserError, match="BasicVSR weights do not fit BasicVSR: Missing key"):
        load_basicvsr({"params": state})
    torch.save({"params": ref.state_dict()}, tmp_path / "basicvsr.pth")
    with pytest.raises(UserError, match=r"formats=\['onnx'\]: BasicVSR / BasicVSR\+\+ graphs do not export yet"):
        export_run({"checkpoint": str(tmp_path / "basicvsr.pth"), "output_dir": str(tmp_path / "e"), "formats": ["onnx"]})
    assert not (tmp_path / "e" / "model.json").exists()
    with pytest.raises(UserError, match="x4 model"):
        from vsr.models.basicvsr import BasicVSR
        BasicVSR(scale=2)


TRAIN_TINY = ["data.train.patch_size=64", "data.train.num_frames=3", "data.batch_size=1", "data.num_workers=0",
              "trainer.max_steps=2", "trainer.enable_progress_bar=false", "data.val.num_clips=1",
              "data.val.num_frames=3", "data.val.patch_size=64", "loss.pixel.kind=l1"]


@pytest.mark.slow
@pytest.mark.parametrize("freeze", [2, 0])
def test_train_py_trains_basicvsr_with_spynet_frozen_for_its_first_steps(tmp_path, freeze):
    """`optim.flow_freeze_steps` (BasicVSR's schedule): SPyNet is not updated while frozen, the rest is."""
    import subprocess
    import sys

    from vsr.export import export

    start = reference("basicvsr")  # BasicSR's model, imported: the run starts from these weights
    model, config = load_basicvsr({"params": start.state_dict()})
    export(model, config, tmp_path / "init")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "train.py"), "model=basicvsr", "model.num_feat=16",
                           "model.num_block=2", f"init_from={tmp_path / 'init'}", f"optim.flow_freeze_steps={freeze}",
                           "optim.flow_lr_mult=1", *TRAIN_TINY, f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    trained = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = {k[len("generator."):]: v for k, v in trained["state_dict"].items() if k.startswith("generator.")}
    initial = model.state_dict()
    spynet_moved = any(not torch.equal(state[k], initial[k]) for k in initial if k.startswith("spynet."))
    assert spynet_moved == (freeze == 0)
    assert not torch.equal(state["fusion.weight"], initial["fusion.weight"])  # the rest trains either way
