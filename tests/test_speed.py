"""experiments/benchmarks/speed.py --quick runs every section and writes its one table."""

import importlib.util
import json
import re

import pytest

from tests.conftest import ROOT


def load_speed():
    spec = importlib.util.spec_from_file_location("speed", ROOT / "experiments" / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_presets_are_read_from_conf_at_scale_4():
    speed = load_speed()
    names = speed.preset_names()
    assert {"recurrent_rrdb", "rrdb", "rrdb_large"} <= set(names) and "bicubic" not in names
    assert all(speed.preset_config(name)["scale"] == 4 for name in names)


@pytest.mark.slow
def test_quick_mode_runs_every_section(tmp_path):
    speed = load_speed()
    out = tmp_path / "speed.md"
    table = speed.main(["--quick", "--presets", "rrdb", "--variants", "eager", "channels_last", "ncnn", "auto",
                        "--size", "32x24", "--memory-frames", "2", "4", "--out", str(out)])
    sections = {row["section"] for row in table.rows}
    assert sections == {"matmul", "conv", "peers", "models", "train", "upscale", "gpu"}
    rows = {(row["section"], row["runtime"]): row for row in table.rows}
    assert table.matmul > 0 and rows[("models", "eager")]["rate"] > 0
    peaks = {row["runtime"]: row for row in table.rows if row["section"] == "matmul"}
    assert set(peaks) == {"fp32", "bf16", "int8"} and all(row["rate"] > 0 for row in peaks.values())
    assert all("AMX tiles" in row["notes"] and "AVX512-VNNI" in row["notes"] for row in peaks.values())
    convs = {row["runtime"]: row for row in table.rows if row["section"] == "conv"}
    assert set(convs) == {"fp32", "bf16", "int8"} and all(row["rate"] > 0 and "kernels:" in row["notes"]
                                                         for row in convs.values())
    assert rows[("models", "eager")]["effective_gflops"] > 0 and rows[("models", "eager")]["gflop_per_frame"] > 0
    assert rows[("models", "auto")]["rate"] > 0
    assert rows[("peers", "ours, torch eager")]["rate"] > 0 and "max |diff| to ours 0.0e+00" in \
        rows[("peers", "spandrel, torch eager")]["notes"]
    text = out.read_text()
    assert "| section | what | runtime |" in text and "bicubic" in text and "peak RSS" in text
    assert json.loads(out.with_suffix(".json").read_text())["rows"]


def test_onednn_kernels_names_the_implementation_that_ran():
    """speed.py reports which oneDNN kernel (and so which ISA: amx, avx512_core_bf16, vnni, avx2) ran."""
    import torch

    speed = load_speed()
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)  # smaller: PyTorch's own kernel
    x = torch.rand(1, 64, 24, 24).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ran = speed.onednn_kernels(lambda: conv(x))
    assert re.match(r"oneDNN convolution \S+:\w+", ran), ran  # e.g. brg_conv_fwd:avx2, ...:avx512_core_amx
    assert speed.onednn_kernels(lambda: torch.ones(3) + 1).startswith("no oneDNN call")


def test_matmul_ratio_brackets_each_timing_with_the_matmul_rate(monkeypatch):
    """matmul_ratio.py: every model timing is divided by the higher of the matmul rates measured just
    before and just after it (not one rate from the start of the run), per round, median reported."""
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "benchmarks"))
    sys.modules.pop("matmul_ratio", None)
    import matmul_ratio
    import speed

    rates = iter([100.0, 300.0, 200.0, 50.0])  # round 1: before/after 100/300; round 2: 200/50
    monkeypatch.setattr(speed, "matmul_rate", lambda *args: next(rates))
    runs = matmul_ratio.main(["--rounds", "2", "--size", "24x16", "--min-time", "0", "--matmul-time", "0",
                              "--models", f"{ROOT / 'experiments' / 'shipped_x4' / 'fast'}:eager"])
    (run,) = runs
    assert run["model"] == "fast" and run["runtime"] == "eager" and len(run["fps"]) == 2
    effective = [fps * run["gflop_per_frame"] for fps in run["fps"]]
    assert run["ratios"] == pytest.approx([effective[0] / 300.0, effective[1] / 200.0])
