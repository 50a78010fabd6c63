"""Runtime selection (vsr.inference.runtime) and the ncnn export: the fastest runtime is picked from
measured calls, any missing or failing runtime falls back to eager, and the ncnn files carry the
blob names ncnn upscaler apps expect."""

import json
from pathlib import Path

import pytest
import torch

from tests.tiny_models import tiny
from vsr.errors import UserError
from vsr.export import export
from vsr.inference import Upscaler
from vsr.inference.runtime import AutoRuntime
from vsr.runtimes import cache as runtime_cache
from vsr.runtimes import factory, graphs, runners
from vsr.runtimes.choice import Choice, RuntimeChooser
from vsr.runtimes.graphs import rename_blobs

TINY_RRDB = {"_target_": "vsr.models.RRDBNet", "scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
             "upsampler": "pixelshuffle", "global_skip": True}
TINY_RECURRENT = {"_target_": "vsr.models.RecurrentRRDBNet", "scale": 4, "num_feat": 8, "num_block": 1,
                  "num_block_prop": 1, "num_grow_ch": 4, "alignment": "none", "upsampler": "pixelshuffle"}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))


def test_auto_times_each_runtime_then_keeps_the_fastest():
    model = tiny(TINY_RRDB)
    auto = AutoRuntime(model, temporal=False, device=torch.device("cpu"), min_pixels=0)
    clip = torch.rand(1, 2, 3, 12, 16)
    with torch.no_grad():
        expected = model(clip)
    calls = 0
    while auto.chosen is None:
        assert (auto(clip) - expected).abs().max() < 1e-5  # every exploring call is a real result
        calls += 1
        assert calls == 1  # timed on probes cut from the first call's clip
    report = auto.report()
    tried = report["seconds_per_mpixel"]
    assert {"eager", "channels_last"} <= set(tried) and set(tried) | set(report["dropped"]) == set(auto.chooser.candidates())
    assert report["runtime"] == min(tried, key=tried.get)
    assert (auto(clip) - expected).abs().max() < 1e-5
    print(f"auto picked {report['runtime']} after {calls} calls: {report}")


def test_missing_or_failing_runtimes_fall_back_to_eager(monkeypatch):
    model = tiny(TINY_RRDB)
    real = factory.make_runner

    def without_exports(name, *args, **kwargs):
        if name in ("ncnn", "onnxruntime", "openvino"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(factory, "make_runner", without_exports)
    clip = torch.rand(1, 1, 3, 8, 8)
    with torch.no_grad():
        expected = model(clip)
    auto = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)
    while auto.chosen is None:
        auto(clip)
    assert set(auto.report()["dropped"]) == {"ncnn", "onnxruntime", "openvino"}
    assert auto.name in ("eager", "channels_last")

    asked = AutoRuntime(model, False, torch.device("cpu"), runtime="ncnn")  # asked for, missing: eager
    assert torch.equal(asked(clip), expected) and asked.name == "eager" and "ncnn" in asked.report()["dropped"]

    class Broken(runners.Runner):
        name = "channels_last"

        def __call__(self, clip, keep=slice(None)):
            raise RuntimeError("kernel crashed")

    broken = AutoRuntime(model, False, torch.device("cpu"), runtime="channels_last")
    broken.choice = Choice(Broken(), broken.eager)
    assert torch.equal(broken(clip), expected) and broken.name == "eager"
    assert "kernel crashed" in broken.report()["dropped"]["channels_last"]


def test_small_inputs_gpu_precisions_and_bad_names_stay_eager():
    model = tiny(TINY_RRDB)
    small = AutoRuntime(model, False, torch.device("cpu"))
    small(torch.rand(1, 2, 3, 8, 8))
    assert small.chosen is None and small.chooser.runners.keys() == {"eager"}  # nothing exported for a thumbnail
    assert AutoRuntime(model, False, torch.device("cpu"), precision="bf16").name == "eager"
    assert AutoRuntime(tiny(TINY_RECURRENT), True, torch.device("cpu")).chooser.candidates() == ["eager", "channels_last"]
    with pytest.raises(UserError, match="runtime=fast"):
        Upscaler(model, 2, temporal=False, device="cpu", runtime="fast")


def test_bf16_on_the_cpu_times_the_pytorch_layouts_and_remembers_them_apart(tmp_path, monkeypatch):
    """Under autocast only PyTorch's runtimes see bf16: eager and channels_last are timed (NHWC was 1.4-1.7x
    NCHW for the shipped models in bf16), never an export; the choice is remembered apart from fp32's."""
    monkeypatch.setenv("VSR_CACHE", str(tmp_path))
    model = tiny(TINY_RRDB)
    bf16 = AutoRuntime(model, False, torch.device("cpu"), precision="bf16", min_pixels=0)
    assert bf16.chooser.candidates() == ["eager", "channels_last"]
    clip = torch.rand(1, 8, 3, 24, 32)
    with torch.autocast("cpu", torch.bfloat16):
        bf16(clip)
    assert bf16.chosen is not None and set(bf16.chooser.timings) == {"eager", "channels_last"}
    fp32 = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)
    assert bf16.chooser.memo(clip) != fp32.chooser.memo(clip) and bf16.chooser.memo(clip).is_file()
    pinned = AutoRuntime(model, False, torch.device("cpu"), precision="bf16", runtime="onnxruntime")
    assert pinned.chosen is pinned.eager and "fp32" in pinned.report()["dropped"]["onnxruntime"]


def test_openvino_in_bf16_computes_the_network_alone_and_adds_the_image_in_fp32():
    """OpenVINO's bf16 rounds whatever it computes: it gets the network's low-resolution residual only,
    and the bicubic skip, the sum and the shuffle stay in PyTorch fp32 (rounding the image itself cost
    up to 0.3 dB on clean clips). With the residual zeroed the output is exactly the fp32 bicubic image;
    models without that split are refused with the reason."""
    model = tiny(TINY_RRDB | {"upsampler": "pixelshuffle_lr"})
    clip = torch.rand(1, 3, 3, 20, 28)
    runner = factory.make_runner("openvino", model, False, precision="bf16")
    assert isinstance(runner.runner, runners.SkipAddedRunner)  # type: ignore[attr-defined]
    with torch.no_grad():
        expected = model(clip)
    assert (runner(clip) - expected).abs().max() < 0.01  # bf16's own error on this random network's large residual
    torch.nn.init.zeros_(model.upsampler[0].weight)
    torch.nn.init.zeros_(model.upsampler[0].bias)
    silent = factory.make_runner("openvino", model, False, precision="bf16")  # exported again: new weights
    with torch.no_grad():
        bicubic = model(clip)
    assert (silent(clip) - bicubic).abs().max() < 1e-6
    with pytest.raises(UserError, match="single-frame models whose bicubic skip"):
        factory.make_runner("openvino", tiny(TINY_RRDB), False, precision="bf16")  # its skip is added at full size
    with pytest.raises(UserError, match="single-frame models whose bicubic skip"):
        factory.make_runner("openvino", tiny(TINY_RECURRENT), True, precision="bf16")


@pytest.mark.parametrize("entry, timed", [({"passed": True}, True), ({"passed": False}, False), (None, False)])
def test_openvino_in_bf16_is_timed_only_where_the_models_check_passed_it(tmp_path, entry, timed):
    """runtime=auto under bf16 times OpenVINO's bf16 only where the export folder's precision_check.json
    has a passed `bf16_openvino` entry (its rounding differs from autocast's; the `bf16` entry is autocast's)."""
    (tmp_path / "precision_check.json").write_text(json.dumps(
        {"bf16": {"passed": True}, **({"bf16_openvino": entry} if entry else {})}))
    model = tiny(TINY_RRDB | {"upsampler": "pixelshuffle_lr"})
    bf16 = AutoRuntime(model, False, torch.device("cpu"), precision="bf16", folder=tmp_path)
    assert ("openvino" in bf16.chooser.candidates()) is timed
    assert "openvino" not in AutoRuntime(tiny(TINY_RECURRENT), True, torch.device("cpu"), precision="bf16",
                                         folder=tmp_path).chooser.candidates()


def test_rename_blobs_touches_names_not_parameters():
    text = ("7767517\n3 3\nInput in0 0 1 in0\nConvolution conv_0 1 1 in0 1 0=8 1=3 6=216\n"
            "Interp up 1 1 1 out0 0=3 1=4.0\n")
    out = rename_blobs(text, {"in0": "data", "out0": "output"}).splitlines()
    assert out[2:] == ["Input data 0 1 data", "Convolution conv_0 1 1 data 1 0=8 1=3 6=216",
                       "Interp up 1 1 1 output 0=3 1=4.0"]


def test_ncnn_export_has_app_blob_names_and_matches_eager(tmp_path):
    pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    model = tiny(TINY_RRDB | {"scale": 4})
    meta = export(model, TINY_RRDB | {"scale": 4}, tmp_path / "exp", formats=["ncnn"])
    entry = meta["formats"]["ncnn"]
    print(f"ncnn parity vs eager: {entry['parity']['max_abs_error']:.1e}")
    assert entry["input"]["name"] == "data" and entry["output"] == "output"
    assert entry["parity"]["max_abs_error"] < 1e-4
    assert json.loads((tmp_path / "exp" / "model.json").read_text())["formats"]["ncnn"]["file"] == "model.ncnn.param"
    param = (tmp_path / "exp" / "model.ncnn.param").read_text().splitlines()
    assert param[2].split() == ["Input", "data", "0", "1", "data"]
    tops = [f for line in param[2:] for f in line.split()[4 + int(line.split()[2]):][:int(line.split()[3])]]
    assert tops.count("output") == 1 and "in0" not in tops and "out0" not in tops

    # the exported files run at a size never traced, through the Upscaler when asked for
    up = Upscaler.from_dir(tmp_path / "exp", device="cpu", runtime="ncnn")
    clip = torch.rand(3, 3, 21, 30)
    out = up.upscale_clip(clip)
    assert up.runtime.name == "ncnn"
    with torch.no_grad():
        assert (out - model(clip[None])[0].clamp(0, 1)).abs().max() < 1e-4

    # files of an earlier export (not in model.json with this sha256) are never used
    assert runtime_cache.exported(tmp_path / "exp", "ncnn", "model.ncnn.param")
    with open(tmp_path / "exp" / "model.ncnn.param", "a") as f:
        f.write("\n")
    assert not runtime_cache.exported(tmp_path / "exp", "ncnn", "model.ncnn.param")
    assert not runtime_cache.exported(tmp_path / "exp", "onnx", "model.onnx")

    with pytest.raises(UserError, match="single-frame"):
        export(tiny(TINY_RECURRENT), TINY_RECURRENT, tmp_path / "rec", formats=["ncnn"])


def test_clips_the_chosen_runtime_cannot_take_go_to_the_best_torch_runtime():
    """An ONNX graph of a recurrent model has its frame count fixed: other clip lengths (first and
    last chunks of a video) run on the fastest PyTorch runtime instead, before and after the choice."""
    import time

    model = tiny(TINY_RECURRENT)

    class SlowEager(runners.TorchRunner):
        def __call__(self, clip, keep=slice(None)):
            time.sleep(0.05)
            return super().__call__(clip, keep)

    class FixedFrames(runners.Runner):  # like OnnxRunner on a recurrent graph exported for 3 frames
        name = "fixed"
        shape = [1, 3, 3, "height", "width"]  # as OnnxRunner reads it from the graph

        def accepts(self, clip):
            return clip.shape[1] == 3

        def __call__(self, clip, keep=slice(None)):
            with torch.no_grad():
                return model(clip)[:, keep]

    auto = AutoRuntime(model, True, torch.device("cpu"), min_pixels=0)
    auto.chooser.eager = auto.chooser.runners["eager"] = SlowEager(model)
    auto.chooser.runners["fixed"] = FixedFrames()
    auto.chooser.pending = ["eager", "fixed"]
    short, full = torch.rand(1, 2, 3, 8, 8), torch.rand(1, 3, 3, 8, 8)
    with torch.no_grad():
        expected_short, expected_full = model(short), model(full)
    for clip, expected in [(short, expected_short), (full, expected_full)] * 3:
        assert torch.allclose(auto(clip), expected, atol=1e-6)
    assert auto.name == "fixed" and auto.choice.fallback.name == "eager"
    assert auto.ran in ("eager+fixed", "fixed+eager")  # what upscale.py's summary names: both ran calls
    assert torch.allclose(auto(short), expected_short, atol=1e-6) and torch.allclose(auto(full), expected_full, atol=1e-6)


def test_a_fast_runtime_with_wrong_outputs_is_never_chosen():
    """Like the recurrent ONNX graphs that once had wrong flows at some sizes: faster than PyTorch
    but off by more than the parity tolerance on the probe, so `auto` drops it and says why."""
    import time

    model = tiny(TINY_RRDB)

    class FastButWrong(runners.Runner):
        name = "wrong"

        def __call__(self, clip, keep=slice(None)):
            with torch.no_grad():
                return model(clip)[:, keep] + 0.01

    class SlowEager(runners.TorchRunner):
        def __call__(self, clip, keep=slice(None)):
            time.sleep(0.05)
            return super().__call__(clip, keep)

    auto = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)
    auto.chooser.eager = auto.chooser.runners["eager"] = SlowEager(model)
    auto.chooser.runners["wrong"] = FastButWrong()
    auto.chooser.pending = ["eager", "wrong"]
    clip = torch.rand(1, 2, 3, 12, 16)
    with torch.no_grad():
        expected = model(clip)
    assert torch.allclose(auto(clip), expected, atol=1e-6) and auto.name == "eager"
    assert "differs from PyTorch by 1.0e-02" in auto.report()["dropped"]["wrong"]


def test_auto_remembers_its_choice_for_the_next_run(monkeypatch):
    """A second run of the same model on the same clip shape starts with the runtime the first
    run timed (no exports, no probes); other shapes or weights are timed afresh."""
    model = tiny(TINY_RRDB)
    clip = torch.rand(1, 2, 3, 12, 16)
    first = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)
    first(clip)
    assert not first.recalled and first.name in first.report()["seconds_per_mpixel"]

    def no_timing(self, clip):
        raise AssertionError("timed again")

    monkeypatch.setattr(RuntimeChooser, "explore", no_timing)
    second = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)
    with torch.no_grad():
        assert torch.allclose(second(clip), model(clip), atol=1e-5)
    assert second.recalled and second.name == first.name and second.report()["timed_earlier"]
    nearby = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)  # a frame size of the same class
    with torch.no_grad():
        near = torch.rand(1, 2, 3, 14, 16)
        assert torch.allclose(nearby(near), model(near), atol=1e-5) and nearby.recalled
    with pytest.raises(AssertionError, match="timed again"):  # frames twice as large each way: timed afresh
        AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)(torch.rand(1, 2, 3, 24, 32))
    with pytest.raises(AssertionError, match="timed again"):  # another frame count a call: timed afresh
        AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)(torch.rand(1, 3, 3, 12, 16))
    other = tiny(TINY_RRDB)
    torch.nn.init.zeros_(next(other.parameters()))
    with pytest.raises(AssertionError, match="timed again"):  # other weights: not remembered
        AutoRuntime(other, False, torch.device("cpu"), min_pixels=0)(clip)


def test_fixed_length_calls_only_for_fixed_length_graphs():
    model = tiny(TINY_RECURRENT)
    auto = AutoRuntime(model, True, torch.device("cpu"))
    assert auto.fixed_frames()  # nothing chosen yet: the first window decides, keep the length

    class Graph(runners.Runner):
        shape = [1, 20, 3, "height", "width"]

    auto.choice = Choice(Graph(), auto.eager)
    assert auto.fixed_frames()
    auto.choice = Choice(auto.eager, auto.eager)
    assert not auto.fixed_frames()  # PyTorch takes any length: the last window can be short


def test_ncnn_export_to_a_relative_folder(tmp_path, monkeypatch):
    # pnnx runs inside its work folder: a relative output_dir once made it look for files that were not there
    pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    monkeypatch.chdir(tmp_path)
    model = tiny(TINY_RRDB | {"scale": 4})
    meta = export(model, TINY_RRDB | {"scale": 4}, Path("relative") / "exp", formats=["ncnn"])
    assert meta["formats"]["ncnn"]["parity"]["max_abs_error"] < 1e-4
    assert (tmp_path / "relative" / "exp" / "model.ncnn.param").read_text().splitlines()[2].split()[1] == "data"


def test_ncnn_runner_reads_non_contiguous_frames(tmp_path):
    # ncnn.Mat wraps numpy memory without a copy: a transposed (strided) clip once read freed memory
    pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    model = tiny(TINY_RRDB | {"scale": 4})
    export(model, TINY_RRDB | {"scale": 4}, tmp_path / "exp", formats=["ncnn"])
    runner = runners.NcnnRunner(tmp_path / "exp" / "model.ncnn.param", tmp_path / "exp" / "model.ncnn.bin")
    clip = torch.rand(1, 2, 3, 12, 20).transpose(-1, -2)  # a view: not contiguous
    with torch.no_grad():
        expected = model(clip.contiguous())
    assert (runner(clip) - expected).abs().max() < 1e-4
    assert (torch.from_numpy(runner.frame(clip[0, 0].numpy())) - expected[0, 0]).abs().max() < 1e-4


def test_single_frame_models_are_timed_on_full_size_frames():
    """Per-pixel speed depends on the frame size (quarter-area crops ranked ncnn above OpenVINO,
    which is 25% faster on the real 320x180 frames), so single-frame models are timed on a quarter
    of the frames at full size; recurrent models keep one clip length for every runtime (crops)."""
    clip = torch.rand(1, 8, 3, 90, 160)
    single = AutoRuntime(tiny(TINY_RRDB), temporal=False, device=torch.device("cpu"), min_pixels=0)
    assert single.chooser.probe(single.eager, clip).shape == (1, 2, 3, 90, 160)
    large = torch.rand(1, 22, 3, 360, 640)  # frames of 230k pixels: one is enough to time (PROBE_PIXELS)
    assert single.chooser.probe(single.eager, large).shape == (1, 1, 3, 360, 640)
    recurrent = AutoRuntime(tiny(TINY_RECURRENT), temporal=True, device=torch.device("cpu"), min_pixels=0)
    probe = recurrent.chooser.probe(recurrent.eager, clip)
    assert probe.shape[1] == 8 and probe.shape[-2] * probe.shape[-1] < 90 * 160 / 2


def test_single_frame_runners_take_a_few_frames_a_call():
    """Single-frame models run on groups of frames of at most FRAME_GROUP_PIXELS LR pixels (their
    activations then stay in the CPU caches), with the same outputs as one call on the whole clip."""
    model = tiny(TINY_RRDB)
    sizes = []

    class Recording(runners.Runner):
        name = "recording"

        def __call__(self, clip, keep=runners.ALL):
            sizes.append(clip.shape[1])
            with torch.no_grad():
                return model(clip[:, keep])

    clip = torch.rand(1, 7, 3, 16, 16)
    grouped = runners.FrameGroups(Recording(), scale=2, pixels=2 * 16 * 16)
    with torch.no_grad():
        expected = model(clip)
    assert (grouped(clip) - expected).abs().max() < 1e-5  # batch size may change the summation order
    assert sizes == [2, 2, 2, 1]
    sizes.clear()
    assert (grouped(clip, slice(2, 5)) - expected[:, 2:5]).abs().max() < 1e-5  # only the kept frames run
    assert sizes == [2, 1]
    assert runners.FrameGroups(Recording(), scale=2, pixels=1).group(clip) == 1  # frames larger than the budget: one a call
    assert grouped(clip, slice(0, 0)).shape == (1, 0, 3, 32, 32)  # no frame kept: an empty clip at the output size
    assert isinstance(factory.make_runner("eager", model, temporal=False), runners.FrameGroups)
    assert not isinstance(factory.make_runner("eager", tiny(TINY_RECURRENT), temporal=True), runners.FrameGroups)


def test_a_changed_cached_export_is_checked_again_before_use(tmp_path):
    """A cached model.onnx swapped for another model's (same name, valid file) is not trusted when
    runtime= is explicit or the choice is remembered: its output is compared with PyTorch's on the
    first clip, it is dropped and removed, and the next run exports it afresh."""
    import shutil

    model = tiny(TINY_RRDB)
    clip = torch.rand(1, 2, 3, 12, 16)
    with torch.no_grad():
        expected = model(clip)
    first = AutoRuntime(model, False, torch.device("cpu"), runtime="onnxruntime", min_pixels=0)
    assert torch.allclose(first(clip), expected, atol=1e-5) and first.name == "onnxruntime"
    cached = runtime_cache.cache_root() / runtime_cache.weights_key(model) / "model.onnx"

    other = tiny(TINY_RRDB)
    torch.nn.init.zeros_(next(other.parameters()))
    wrong = graphs.export_onnx_file(other, tmp_path / "other")

    def swapped_run(**options) -> AutoRuntime:
        shutil.copyfile(wrong, cached)
        auto = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0, **options)
        assert torch.allclose(auto(clip), expected, atol=1e-5)
        assert "differs from PyTorch" in auto.report()["dropped"]["onnxruntime"]
        # removed; a later candidate of the same run (openvino reads the same file) may export it afresh
        assert not cached.exists() or cached.read_bytes() != Path(wrong).read_bytes()
        return auto

    explicit = swapped_run(runtime="onnxruntime")
    assert explicit.name == "eager"
    fresh = AutoRuntime(model, False, torch.device("cpu"), runtime="onnxruntime", min_pixels=0)
    assert torch.allclose(fresh(clip), expected, atol=1e-5) and fresh.name == "onnxruntime"  # exported afresh

    fresh.chooser.memo(clip).parent.mkdir(parents=True, exist_ok=True)
    fresh.chooser.memo(clip).write_text(json.dumps({"runtime": "onnxruntime", "fallback": "eager"}))
    remembered = swapped_run()
    assert not remembered.recalled  # timed afresh, without the swapped file
    fresh = AutoRuntime(model, False, torch.device("cpu"), runtime="onnxruntime", min_pixels=0)
    fresh(clip)
    assert json.loads((cached.parent / runtime_cache.MANIFEST).read_text())["model.onnx"]["size"] == cached.stat().st_size
    assert [p.name for p in cached.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_clip_shorter_than_the_graph_runs_on_the_runtime_timing_chose(tmp_path, monkeypatch):
    """A recurrent model's ONNX graphs take the frame count they were exported with; a video shorter
    than that (one short window) cannot run on them. They used to be timed anyway, on the clip's
    frames repeated to the graph's length, won, and the clip then ran on the PyTorch fallback: the
    wait bought nothing. Now they are not built or timed for such a clip, the chosen runtime is the
    one that runs it, it says why, and the remembered choice is keyed by the runtimes timed."""
    import time

    from vsr.runtimes.model_files import sha256_file

    model = tiny(TINY_RECURRENT)
    folder = tmp_path / "export"  # model.json lists 8-frame graphs (the runners are stand-ins below)
    folder.mkdir()
    for name in ("model.propagate.onnx", "model.reconstruct.onnx"):
        (folder / name).write_bytes(name.encode())
    (folder / "model.json").write_text(json.dumps({"formats": {"onnx_split": {
        "file": "model.propagate.onnx", "sha256": sha256_file(folder / "model.propagate.onnx"),
        "reconstruct_file": "model.reconstruct.onnx", "reconstruct_sha256": sha256_file(folder / "model.reconstruct.onnx"),
        "input": {"shape": [1, 8, 3, "height", "width"]}}}}))

    class Slow(runners.Runner):  # PyTorch, slower than the graphs
        def __init__(self, runner):
            self.runner, self.name = runner, runner.name

        def __call__(self, clip, keep=slice(None)):
            time.sleep(0.02)
            return self.runner(clip, keep)

    class Graph(runners.Runner):  # like an ONNX graph exported for 8 frames: fast, exact, 8-frame clips only
        shape = [1, 8, 3, None, None]

        def __init__(self, name):
            self.name = name

        def accepts(self, clip):
            return clip.shape[1] == 8

        def __call__(self, clip, keep=slice(None)):
            with torch.no_grad():
                return model(clip)[:, keep]

    built, real = [], factory.make_runner
    monkeypatch.setattr(factory, "make_runner", lambda name, *args, **kwargs: built.append(name) or (
        Graph(name) if name in ("onnxruntime", "openvino") else Slow(real(name, *args, **kwargs))))

    def run(frames: int) -> tuple[AutoRuntime, list[str]]:
        auto, said = AutoRuntime(model, True, torch.device("cpu"), folder=folder, min_pixels=0), []
        auto.notify = said.append
        clip = torch.rand(1, frames, 3, 16, 16)
        with torch.no_grad():
            assert torch.allclose(auto(clip), model(clip), atol=1e-5)
        return auto, said

    short, said = run(6)
    assert short.name in ("eager", "channels_last") and short.ran == short.name
    assert not {"onnxruntime", "openvino"} & set(built)
    assert said[0].startswith("timing runtimes for 16x16, 6 frames a call: eager, channels_last (once per model")
    assert said[1].startswith(f"runtime: {short.name}, frames/s at 16x16") and said[1].count("not used") == 1
    assert "onnxruntime, openvino not used: its ONNX graph takes 8 frames a call, these calls have 6" in said[1]
    assert short.chooser.memo(torch.rand(1, 6, 3, 16, 16)).name.endswith("-eager+channels_last.json")

    full, _ = run(8)  # a window of the graph's length: the graphs are timed, and the faster one runs
    assert full.name in ("onnxruntime", "openvino") and full.ran == full.name

    # a choice remembered for short clips that names a graph (as the old timing did) is not used
    short.chooser.memo(torch.rand(1, 6, 3, 16, 16)).write_text(json.dumps({"runtime": "openvino", "fallback": "eager"}))
    again, said = run(6)
    assert not again.recalled and again.ran == again.name != "openvino" and said[0].startswith("timing runtimes")


def test_choosing_stops_when_its_time_cap_is_spent(monkeypatch):
    """Choosing costs at most CHOICE_SECONDS, or CHOICE_SHARE of the job at PyTorch's timed speed when
    that is longer: candidates left when it is spent are not built or timed, and the report says why;
    eager is always timed (it is the fallback)."""
    import time

    from vsr.runtimes import choice

    model = tiny(TINY_RRDB)
    built = []

    class Slow(runners.Runner):  # an export that takes its time, then a fast runner
        def __init__(self, name):
            self.name = name

        def __call__(self, clip, keep=slice(None)):
            with torch.no_grad():
                return model(clip)[:, keep]

    def make(name, *args, **kwargs):
        built.append(name)
        if name in runners_torch:
            return real(name, *args, **kwargs)
        time.sleep(0.3)
        return Slow(name)

    runners_torch, real = ("eager", "channels_last"), factory.make_runner
    monkeypatch.setattr(factory, "make_runner", make)
    monkeypatch.setattr(choice, "CHOICE_SECONDS", 0.2)
    clip = torch.rand(1, 2, 3, 12, 16)
    auto = AutoRuntime(model, False, torch.device("cpu"), min_pixels=0)
    with torch.no_grad():
        assert torch.allclose(auto(clip), model(clip), atol=1e-5)
    report = auto.report()
    assert built == ["eager", "channels_last", "onnxruntime"]  # the first export spent the cap
    assert set(report["seconds_per_mpixel"]) == {"eager", "channels_last", "onnxruntime"}
    assert {"openvino", "ncnn"} <= set(report["dropped"]) and "capped at 0 s" in report["dropped"]["ncnn"]

    # a long job buys a longer choice: its share at eager's timed speed
    long_job = RuntimeChooser(model, False, job_frames=10**9)
    long_job.timings["eager"] = [1e-6]
    assert long_job.budget(clip) == pytest.approx(choice.CHOICE_SHARE * 1e-6 * 12 * 16 * 10**9)
    assert RuntimeChooser(model, False).budget(clip) == choice.CHOICE_SECONDS  # job size unknown


def test_an_earlier_runs_timings_at_another_size_order_the_candidates(monkeypatch):
    """A new frame size is timed afresh, but the runtimes that won at the nearest size an earlier run
    timed go first (after eager), so a cap spent early still times the likely winner: 640x360 with
    22-frame calls chose eager because only eager fitted in 10 s, while ncnn had won at 320x180."""
    import time

    from vsr.runtimes import choice

    model = tiny(TINY_RRDB)
    built = []
    real = factory.make_runner

    def make(name, *args, **kwargs):
        built.append(name)
        if name in ("eager", "channels_last"):
            return real(name, *args, **kwargs)
        time.sleep(0.3)  # an export: spends the cap
        runner = real("eager", *args, **kwargs)
        runner.name = name
        return runner

    monkeypatch.setattr(factory, "make_runner", make)
    small, large = torch.rand(1, 2, 3, 12, 16), torch.rand(1, 2, 3, 48, 64)
    earlier = RuntimeChooser(model, temporal=False)
    earlier.memo(small).parent.mkdir(parents=True, exist_ok=True)
    earlier.memo(small).write_text(json.dumps({"runtime": "ncnn", "fallback": "eager", "seconds_per_mpixel": {
        "eager": 5.0, "channels_last": 4.0, "openvino": 2.0, "ncnn": 1.0}}))
    monkeypatch.setattr(choice, "CHOICE_SECONDS", 0.2)
    built.clear()
    chooser = RuntimeChooser(model, temporal=False)
    made = chooser.choose(large)
    assert built == ["eager", "ncnn"] and made.runner.name in chooser.timings  # onnxruntime (never timed) goes last
    assert set(chooser.timings) == {"eager", "ncnn"}  # the earlier winner was timed before the cap was spent
    assert chooser.pending == ["eager", "ncnn", "openvino", "channels_last", "onnxruntime"]
    assert "capped" in chooser.report()["dropped"]["channels_last"]


def test_a_candidate_whose_first_round_would_overrun_the_cap_is_not_timed_again(monkeypatch):
    """The cap was checked only before a candidate started: a slow one begun just under it ran past
    it. A candidate now starts only when its first round's cost still fits; warm-ups are two frames
    where a runtime takes any length."""
    import time

    from vsr.runtimes import choice

    model = tiny(TINY_RRDB)
    frames_seen = []

    class Slow(runners.Runner):  # 0.3 s a call, whatever the clip
        name = "onnxruntime"

        def __call__(self, clip, keep=slice(None)):
            frames_seen.append(clip.shape[1])
            time.sleep(0.3)
            with torch.no_grad():
                return model(clip)[:, keep]

    real = factory.make_runner

    def make(name, *args, **kwargs):
        if name in ("eager", "channels_last"):
            return real(name, *args, **kwargs)
        if name == "onnxruntime":
            return Slow()
        raise RuntimeError("not installed here")

    monkeypatch.setattr(factory, "make_runner", make)
    monkeypatch.setattr(choice, "CHOICE_SECONDS", 1.0)
    chooser = RuntimeChooser(model, temporal=False)
    made = chooser.choose(torch.rand(1, 12, 3, 12, 16))
    assert made.seconds < 1.0  # its first round took 0.6 s: a second would end past the cap
    assert len(chooser.timings["onnxruntime"]) == 1 and len(chooser.timings["eager"]) == 2
    assert frames_seen == [2, 3]  # warm-up on two frames, then the probe: a quarter of the 12


def test_openvino_is_imported_without_its_telemetry_process():
    """`import openvino` sends a usage event from a forked process; in a CI run that fork hung beside PyAV's
    decoder threads and upscale.py never exited. The runners import it with OpenVINO's own stub instead."""
    import subprocess
    import sys

    pytest.importorskip("openvino")
    code = ("from vsr.runtimes.runners import import_openvino; import_openvino(); "
            "import openvino.tools.ovc.telemetry_utils as t; print(t.tm.__name__)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           cwd=Path(__file__).resolve().parents[1])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "openvino.tools.ovc.telemetry_stub"
