"""Export: checkpoint -> safetensors + model.json (+ ONNX, TorchScript matching eager), weight import."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import tiny

from vsr.errors import UserError
from vsr.export import export, run
from vsr.inference import load
from vsr.models.convert import convert_esrgan, load_esrgan
from vsr.runtimes.model_files import sha256_file

# torch.jit.load is deprecated (FutureWarning) but TorchScript is still what many C++ runtimes load.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:FutureWarning")

ROOT = Path(__file__).resolve().parents[1]
TINY_RECURRENT = {"_target_": "vsr.models.RecurrentRRDBNet", "scale": 4, "num_feat": 8, "num_block": 1,
                  "num_block_prop": 1, "num_grow_ch": 4, "flow_levels": 2, "flow_channels": [8, 8]}
TINY_RRDB = {"_target_": "vsr.models.RRDBNet", "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
             "upsampler": "nearest_conv", "global_skip": False}



def fake_checkpoint(path: Path, config: dict) -> tuple[Path, torch.nn.Module]:
    """A Lightning-style checkpoint whose EMA generator differs from the raw one."""
    raw, ema = tiny(config, 0), tiny(config, 1)
    state = {f"generator.{k}": v for k, v in raw.state_dict().items()}
    state |= {f"generator_ema.module.{k}": v for k, v in ema.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 123, "epoch": 2,
                "hyper_parameters": {"generator_config": config, "training_config": {"warmup_steps": 5}}}, path)
    return path, ema


def to_basicsr(state: dict) -> dict:
    """Our RRDBNet names -> BasicSR / Real-ESRGAN names (what users' .pth files contain)."""
    return {k.replace("trunk.", "").replace("upsampler.", ""): v.clone() for k, v in state.items()}


def test_checkpoint_exports_ema_weights_and_model_json(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    ckpt, ema = fake_checkpoint(run_dir / "checkpoints" / "last.ckpt", TINY_RECURRENT)
    (run_dir / "metrics.json").write_text(json.dumps({"mean": {"psnr_y": 30.5}}))
    out = tmp_path / "export"
    meta = run({"checkpoint": str(ckpt), "output_dir": str(out)})

    on_disk = json.loads((out / "model.json").read_text())
    assert on_disk["architecture"] == TINY_RECURRENT and on_disk["scale"] == 4 and on_disk["temporal"]
    assert on_disk["weights"]["sha256"] == sha256_file(out / "model.safetensors")
    assert on_disk["source"]["weights"] == "ema" and on_disk["source"]["global_step"] == 123
    assert on_disk["training_config"] == {"warmup_steps": 5}
    assert on_disk["metrics"]["mean"]["psnr_y"] == 30.5
    assert meta["formats"] == {}
    model, _ = load(out)
    x = torch.rand(1, 3, 3, 12, 16)
    with torch.no_grad():
        assert torch.equal(model(x), ema(x))
    with pytest.raises(UserError, match="overwrite=true"):
        run({"checkpoint": str(ckpt), "output_dir": str(out)})


def test_overwriting_an_export_drops_the_bf16_check_of_the_weights_it_replaces(tmp_path):
    ckpt, _ = fake_checkpoint(tmp_path / "last.ckpt", TINY_RRDB)
    out = tmp_path / "export"
    run({"checkpoint": str(ckpt), "output_dir": str(out)})
    (out / "precision_check.json").write_text(json.dumps({"bf16": {"passed": True}}))
    (out / "notes.txt").write_text("the user's own file")
    run({"checkpoint": str(ckpt), "output_dir": str(out), "overwrite": True})
    assert not (out / "precision_check.json").exists()  # it measured the earlier weights
    assert (out / "notes.txt").read_text() == "the user's own file"


def test_an_export_folder_is_written_again_with_more_formats_and_keeps_its_provenance(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    ckpt, ema = fake_checkpoint(run_dir / "checkpoints" / "last.ckpt", TINY_RRDB)
    (run_dir / "metrics.json").write_text(json.dumps({"mean": {"psnr_y": 30.5}}))
    first = run({"checkpoint": str(ckpt), "output_dir": str(tmp_path / "first")})
    again = run({"checkpoint": str(tmp_path / "first"), "output_dir": str(tmp_path / "again"), "formats": ["onnx"]})

    assert again["weights"]["sha256"] == first["weights"]["sha256"]
    assert again["source"] == first["source"] and again["source"]["global_step"] == 123
    assert again["training_config"] == {"warmup_steps": 5} and again["metrics"]["mean"]["psnr_y"] == 30.5
    assert (tmp_path / "again" / "model.onnx").is_file() and again["formats"]["onnx"]["parity"]["max_abs_error"] < 1e-4
    with pytest.raises(UserError, match="file not found"):
        run({"checkpoint": str(tmp_path / "nothing_here"), "output_dir": str(tmp_path / "x")})


def test_single_frame_onnx_and_torchscript_match_eager(tmp_path):
    import onnxruntime as ort

    model = tiny(TINY_RRDB)
    meta = export(model, TINY_RRDB, tmp_path, formats=["onnx", "torchscript"])
    assert meta["formats"]["onnx"]["input"]["shape"] == ["batch", "frames", 3, "height", "width"]
    # Clips of shapes the export never saw, at three frame counts: batch, frames, height and width are all dynamic.
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    script = torch.jit.load(str(tmp_path / "model.pt"))
    for frames in (1, 2, 5):
        x = torch.rand(2, frames, 3, 20, 28)
        with torch.no_grad():
            expected = model(x)
        onnx_err = (torch.from_numpy(session.run(None, {"lr": x.numpy()})[0]) - expected).abs().max().item()
        script_err = (script(x) - expected).abs().max().item()
        print(f"single-frame max abs error, {frames} frames: onnx {onnx_err:.2e}, torchscript {script_err:.2e}")
        assert onnx_err < 1e-4 and script_err < 1e-4
    for entry in meta["formats"].values():
        assert entry["parity"]["max_abs_error"] < 1e-4


@pytest.mark.slow
def test_recurrent_onnx_and_torchscript_match_eager(tmp_path):
    """Recurrent models: H and W dynamic, frame count fixed at export (the recurrence is unrolled)."""
    import onnxruntime as ort

    model = tiny(TINY_RECURRENT)
    meta = export(model, TINY_RECURRENT, tmp_path, formats=["onnx", "torchscript"], frames=2)
    assert meta["formats"]["onnx"]["input"]["shape"] == [1, 2, 3, "height", "width"]
    x = torch.rand(1, 2, 3, 18, 30)
    with torch.no_grad():
        expected = model(x)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_err = (torch.from_numpy(session.run(None, {"lr": x.numpy()})[0]) - expected).abs().max().item()
    script_err = (torch.jit.load(str(tmp_path / "model.pt"))(x) - expected).abs().max().item()
    print(f"recurrent max abs error: onnx {onnx_err:.2e}, torchscript {script_err:.2e}")
    assert onnx_err < 1e-4 and script_err < 1e-4
    # model.json records the frame count both files take; other counts (1 and 3 frames) are refused with an
    # error that says which count the file takes, not an index error deep in the graph
    assert meta["formats"]["torchscript"]["input"]["shape"] == [1, 2, 3, "height", "width"]
    for clip in (torch.rand(1, 3, 3, 18, 30), torch.rand(1, 1, 3, 18, 30)):
        with pytest.raises(torch.jit.Error, match=r"takes clips of exactly 2 frames, \(B, 2, 3, H, W\)"):
            torch.jit.load(str(tmp_path / "model.pt"))(clip)
        with pytest.raises(Exception, match=rf"(?s)invalid dimensions for input: lr.*index: 1 Got: {clip.shape[1]} Expected: 2"):
            session.run(None, {"lr": clip.numpy()})


def test_onnx_split_runs_kept_frames_like_eager_and_stale_files_are_not_used(tmp_path):
    """formats=[onnx_split]: propagation and reconstruction as two graphs, so a window's context
    frames are never reconstructed; both runtimes match eager on the kept frames, at a size off the
    flow pyramid's multiple. A graph file replaced after export is not used; single-frame models
    are refused with a one-line error."""
    from vsr.runtimes.factory import make_runner
    from vsr.runtimes.runners import SplitGraphRunner

    model = tiny(TINY_RECURRENT)
    meta = export(model, TINY_RECURRENT, tmp_path, formats=["onnx_split"], frames=3)
    entry = meta["formats"]["onnx_split"]
    assert entry["input"]["shape"] == [1, 3, 3, "height", "width"] and entry["parity"]["max_abs_error"] < 1e-4
    x, keep = torch.rand(1, 3, 3, 19, 29), slice(1, 2)
    with torch.no_grad():
        expected = model(x)[:, keep]
    for name in ("onnxruntime", "openvino"):
        runner = make_runner(name, model, True, tmp_path)
        assert isinstance(runner, SplitGraphRunner) and runner.accepts(x) and not runner.accepts(x[:, :2])
        assert (runner(x, keep) - expected).abs().max().item() < 1e-4
    (tmp_path / "model.reconstruct.onnx").write_bytes(b"stale")
    with pytest.raises(UserError, match="onnx_split"):
        make_runner("onnxruntime", model, True, tmp_path)
    with pytest.raises(UserError, match=r"formats=\[onnx_split\] is for recurrent models"):
        export(tiny(TINY_RRDB), TINY_RRDB, tmp_path / "single", formats=["onnx_split"])


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("wrapper", ["params_ema", "params", None])
def test_real_esrgan_state_dict_imports_exactly(scale, wrapper):
    config = TINY_RRDB | {"scale": scale, "num_block": 2}
    direct = tiny(config)
    state = to_basicsr(direct.state_dict())
    imported, found = load_esrgan({wrapper: state} if wrapper else state)
    assert found == config
    x = torch.rand(1, 2, 3, 10, 12)
    with torch.no_grad():
        assert torch.equal(imported(x), direct(x))


def test_real_esrgan_import_agrees_with_spandrel():
    """spandrel (an independent implementation) runs the same file and gives the same image;
    its model also holds the original-ESRGAN key layout, which we import as well."""
    spandrel = pytest.importorskip("spandrel")
    config = TINY_RRDB | {"num_grow_ch": 32}  # spandrel assumes 32 growth channels
    direct = tiny(config)
    descriptor = spandrel.ModelLoader().load_from_state_dict({"params_ema": to_basicsr(direct.state_dict())})
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        reference = descriptor.model(x)
        ours = direct(x[:, None])[:, 0]
        from_old_layout, _ = load_esrgan(descriptor.model.state_dict())  # keys model.0, model.1.sub.N...
        assert (ours - reference).abs().max() < 1e-5
        assert (from_old_layout(x[:, None])[:, 0] - reference).abs().max() < 1e-5


def test_real_esrgan_file_exports_and_loads(tmp_path):
    direct = tiny(TINY_RRDB)
    pth = tmp_path / "RealESRGAN_tiny.pth"
    torch.save({"params_ema": to_basicsr(direct.state_dict())}, pth)
    meta = run({"checkpoint": str(pth), "output_dir": str(tmp_path / "exp")})
    assert meta["source"]["kind"] == "esrgan-import" and meta["temporal"] is False
    model, _ = load(tmp_path / "exp")
    x = torch.rand(1, 2, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(model(x), direct(x))


def test_unsupported_or_damaged_weights_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        run({"checkpoint": str(tmp_path / "nope.ckpt"), "output_dir": str(tmp_path / "o")})
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot be loaded safely"):
        run({"checkpoint": str(junk), "output_dir": str(tmp_path / "o")})
    with pytest.raises(UserError, match="formats"):
        run({"checkpoint": str(fake_checkpoint(tmp_path / "a.ckpt", TINY_RRDB)[0]),
             "output_dir": str(tmp_path / "o"), "formats": ["tflite"]})
    with pytest.raises(UserError, match="input channels"):
        convert_esrgan({"params": to_basicsr(tiny(TINY_RRDB | {"num_in_ch": 48}).state_dict())})
    assert not (tmp_path / "o").exists()


def test_load_checks_the_weights_hash(tmp_path):
    export(tiny(TINY_RRDB), TINY_RRDB, tmp_path)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        load(tmp_path)
    with pytest.raises(UserError, match="export.py"):
        load(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="export.py checkpoint="):
        load(tmp_path / "model.safetensors")  # a weights file instead of the folder


@pytest.mark.slow
def test_load_imports_neither_lightning_nor_hydra(tmp_path):
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, tmp_path)
    code = (
        "import sys, torch\n"
        "from vsr.inference import load, Upscaler\n"
        f"model, meta = load({str(tmp_path)!r})\n"
        "Upscaler(model, meta['scale']).upscale_clip(torch.rand(2, 3, 8, 8))\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'pytorch_lightning', 'hydra', 'omegaconf'})\n"
        "print('loaded', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_export_py_command(tmp_path):
    ckpt, _ = fake_checkpoint(tmp_path / "last.ckpt", TINY_RRDB)
    out = tmp_path / "exp"
    result = subprocess.run([sys.executable, "export.py", f"checkpoint={ckpt}", f"output_dir={out}",
                             "formats=[torchscript]"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.pt", "model.safetensors"]
    assert "parity vs eager" in result.stdout
    missing = subprocess.run([sys.executable, "export.py", f"output_dir={out}"], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and missing.stderr.startswith("error: checkpoint=CKPT is required")


@pytest.mark.parametrize("formats", [["onnx"], ["torchscript"]])
def test_real_esrgan_x2_exports_with_a_probe_size_it_can_take(tmp_path, formats):
    """Real-ESRGAN x2 folds 2x2 pixels into channels (pixel_unshuffle): the parity probe must use
    sizes it can take (it used 27x39 and crashed). The file is built by spandrel, in its own layout."""
    spandrel = pytest.importorskip("spandrel")
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    reference = ESRGAN(in_nc=12, out_nc=3, num_filters=8, num_blocks=1, scale=4, shuffle_factor=2).eval()
    pth = tmp_path / "RealESRGAN_x2_tiny.pth"
    torch.save({"params_ema": reference.state_dict()}, pth)
    assert spandrel.ModelLoader().load_from_state_dict(reference.state_dict()).scale == 2
    meta = run({"checkpoint": str(pth), "output_dir": str(tmp_path / "exp"), "formats": formats})
    assert meta["scale"] == 2 and meta["formats"][formats[0]]["parity"]["max_abs_error"] <= 1e-4
    model, _ = load(tmp_path / "exp")
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        assert (model(x[:, None])[:, 0] - reference(x)).abs().max() < 1e-5


def test_model_json_scale_must_agree_with_its_architecture(tmp_path):
    """A model.json whose `scale` says x4 over an x2 architecture was run as x4 by resizing the
    model's x2 output: refused in one line instead."""
    export(tiny(TINY_RRDB), TINY_RRDB, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps(meta | {"scale": 2}))
    with pytest.raises(UserError, match=r"scale 2 disagrees with its architecture.*x4") as err:
        load(tmp_path)
    assert "\n" not in str(err.value)
