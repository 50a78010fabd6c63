"""Does quantization-aware fine-tuning keep a single-frame model's int8 network within the bf16 check?

    pip install -e ".[quantize]"     # NNCF: only this experiment uses it
    python experiments/benchmarks/int8_qat.py vsr/weights/default/x4 [--steps 1500] [--lr 1e-4] [--out results/int8_qat.json]

The network part of the model (`RRDBNet.lr_residual`: everything but the bicubic skip, which stays fp32
as `runners.SkipAddedRunner` adds it) is quantized by NNCF (`nncf.quantize`, MIXED preset: symmetric
per-channel int8 weights, asymmetric activations; the first and the last convolution kept fp32),
calibrated on int8_ptq.py's 16 LR crops of the corpus's train photographs. Then the fake-quantized network is
fine-tuned, Adam with a cosine schedule, to reproduce the fp32 model's own output (distillation: the target is what
int8 must match, not the HR frame) on `experiment=corpus_x4_single_cpu`'s training windows. The result is
exported to ONNX (OpenVINO's FakeQuantize ops) and compiled by OpenVINO, which runs it with int8 kernels.

Judged as a bf16 variant is (vsr.inference.precision.verdict: at most 0.02 dB mean PSNR-Y below fp32, tOF
at most 1% higher): first on the corpus's validation split (bicubic and compressed LR, 8 clips x 8 frames of
256 px each), where the settings above were chosen, then on the held-out test clips of
experiments/corpus/heldout.py (clean BI x4 and H.264 CRF 28, 8 frames each). Speed: OpenVINO frames/s of
the residual graph, fp32 / bf16 (what ships where the bf16 check passed) / int8, on this machine.
"""

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments" / "corpus"))
sys.path.insert(0, str(ROOT / "experiments" / "benchmarks"))
from heldout import conditions, load_clip  # noqa: E402  (experiments/* are not packages)
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from int8_ptq import best_seconds, calibration_clips  # noqa: E402
from precision_check import tally  # noqa: E402

import vsr.conf  # noqa: E402,F401  (registers the options the configs compose onto)
from vsr.inference.precision import verdict  # noqa: E402
from vsr.runtimes.graphs import LowResResidual, export_residual_onnx_file  # noqa: E402
from vsr.runtimes.model_files import load  # noqa: E402

KEEP_FP32 = ["/conv2d/0", "/conv2d/1"]  # NNCF's names of conv_first and the upsampler's convolution


def compose_cfg(config: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config, overrides=overrides)


def quantize(model: torch.nn.Module, corpus: Path):
    try:
        import nncf
    except ImportError:
        sys.exit('int8_qat.py needs NNCF, which vsrlab does not install: pip install -e ".[quantize]"')

    calibration = [torch.from_numpy(clip[0]) for clip in calibration_clips(corpus)]
    return nncf.quantize(LowResResidual(copy.deepcopy(model)).eval(), nncf.Dataset(calibration),
                         subset_size=len(calibration), preset=nncf.QuantizationPreset.MIXED,
                         ignored_scope=nncf.IgnoredScope(names=KEEP_FP32))


def fine_tune(quantized: torch.nn.Module, model: torch.nn.Module, steps: int, lr: float) -> None:
    """Distillation: the fake-quantized network's output towards the fp32 model's, on training windows."""
    loader = instantiate(compose_cfg("train", ["experiment=corpus_x4_single_cpu", "data.num_workers=1"]).data).train_dataloader()
    optimizer = torch.optim.Adam([p for p in quantized.parameters() if p.requires_grad], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    quantized.train()
    batches, started = iter(loader), time.time()
    for step in range(steps):
        batch = next(batches, None)
        if batch is None:  # the loader's epoch ended: a new pass over freshly sampled windows
            batches = iter(loader)
            batch = next(batches)
        lr_frames = batch["lr"].flatten(0, 1)
        with torch.no_grad():
            target = model.add_skip(model.lr_residual(lr_frames), lr_frames)
        loss = (model.add_skip(quantized(lr_frames), lr_frames) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step}: L1 to fp32 {loss.item():.5f} ({time.time() - started:.0f} s)", flush=True)
    quantized.eval()


def export_int8(quantized: torch.nn.Module, path: Path) -> None:
    """The fake-quantized network as graphs.export_residual_onnx_file writes the fp32 one (same names and
    axes); no parity check against eager, which only OpenVINO could run (FakeQuantize is its own op)."""
    torch.onnx.export(quantized, (torch.rand(1, 3, 32, 32),), str(path), dynamo=False, input_names=["lr"],
                      output_names=["residual"], opset_version=17,
                      dynamic_axes={"lr": {0: "frames", 2: "height", 3: "width"},
                                    "residual": {0: "frames", 2: "height", 3: "width"}})


def judge(model: torch.nn.Module, int8_network, clips) -> tuple[dict, list[dict]]:
    """fp32 against the int8 network (the skip added in fp32) on `(name, lr, hr)` clips."""
    scores = {p: {"psnr_y": [], "tof": []} for p in ("fp32", "int8")}
    rows = []
    for name, lr, hr in clips:
        with torch.no_grad():
            outputs = {"fp32": torch.cat([model.add_skip(model.lr_residual(f[None]), f[None]) for f in lr]),
                       "int8": torch.cat([model.add_skip(torch.from_numpy(int8_network(f[None].numpy())[0]), f[None])
                                          for f in lr])}
        row = {"clip": name}
        tally(scores, row, outputs, hr)
        rows.append(row)
        print(f"{name:44s} PSNR-Y fp32 {row['fp32']['psnr_y']:.3f} int8 {row['int8']['psnr_y']:.3f} "
              f"({row['int8']['psnr_y'] - row['fp32']['psnr_y']:+.4f})", flush=True)
    return verdict(scores["fp32"], scores["int8"]), rows


def validation_clips():
    for degradation in ("bicubic", "compressed"):
        cfg = compose_cfg("evaluate", ["data=corpus", f"degradation={degradation}", "data.val.patch_size=256",
                                       "data.val.num_frames=8"])
        clips = instantiate(cfg.data.val)
        for index in range(len(clips)):
            yield f"val {index} {degradation}", clips[index]["lr"].float(), clips[index]["hr"].float()


def heldout_clips(corpus: Path):
    for clip in sorted(p for p in (corpus / "videos" / "test").iterdir() if p.is_dir()):
        hr = load_clip(clip, 8)
        for condition, lr in conditions(hr, 28, None).items():
            yield f"{clip.name} {condition}", lr, hr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog='Needs NNCF: pip install -e ".[quantize]". Details: this file\'s docstring.')
    parser.add_argument("folder", type=Path, help="a shipped or exported single-frame model whose bicubic skip splits off")
    parser.add_argument("--corpus", type=Path, default=ROOT / "datasets" / "corpus")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    import openvino as ov

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _ = load(args.folder)
    if not getattr(model, "splits_skip", False):
        sys.exit(f"{args.folder}: not a single-frame model whose bicubic skip splits off (RRDBNet.splits_skip)")
    quantized = quantize(model, args.corpus)
    fine_tune(quantized, model, args.steps, args.lr)
    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        int8_file = Path(tmp) / "residual.int8.onnx"
        export_int8(quantized, int8_file)
        fp32_file = export_residual_onnx_file(model, Path(tmp))  # the graph the bf16 runtime ships, parity-checked
        compiled = {name: core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                                                  "INFERENCE_PRECISION_HINT": hint})
                    for name, path, hint in (("fp32", fp32_file, "f32"), ("bf16", fp32_file, "bf16"),
                                             ("int8", int8_file, "f32"))}
        speed = {}
        for w, h in ((320, 180), (640, 360)):
            frame = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
            speed[f"{w}x{h}"] = {name: round(1 / best_seconds(network, frame), 3) for name, network in compiled.items()}
        print(f"OpenVINO frames/s of the residual graph ({args.threads} threads): {speed}", flush=True)
        val, val_rows = judge(model, compiled["int8"], validation_clips())
        print(f"validation: {val}", flush=True)
        held, held_rows = judge(model, compiled["int8"], heldout_clips(args.corpus))
        print(f"held out: {held}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"int8_qat": {
            "validation": val, "heldout": held, "frames_per_second": speed, "steps": args.steps, "lr": args.lr,
            "keep_fp32": KEEP_FP32, "clips": {"validation": val_rows, "heldout": held_rows},
            "cpu": platform.processor() or platform.machine(), "threads": args.threads,
            "date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "command": " ".join(sys.argv)}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
