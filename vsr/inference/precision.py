"""Mixed precision on the CPU: which models may run in bf16 and on which CPUs it pays.

A model runs in bf16 under `precision=auto` only where its export folder holds a passed check
(`precision_check.json`, written by experiments/benchmarks/precision_check.py: fp32 against bf16 on
held-out real clips, at most 0.02 dB mean PSNR-Y lower and no more flicker by tOF) and the CPU has
native bf16 arithmetic (AVX512-BF16 or AMX): elsewhere oneDNN emulates it, slower than fp32. Flow
estimation, warping and the image skip stay fp32 inside the models (vsr.models.recurrent / rrdb).
"""

import json
from pathlib import Path

import torch

from vsr.runtimes.choice import TORCH_RUNTIMES
from vsr.runtimes.model_files import CHECK_FILE, MODEL_JSON

MAX_PSNR_LOSS = 0.02  # dB, mean PSNR-Y over the check's clips and conditions
MAX_TOF_GAIN = 0.01  # relative: mean tOF at most 1% above fp32's


def native_bf16() -> bool:
    """Whether this CPU computes bf16 products natively (AMX tiles or AVX512-BF16)."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def check_key(precision: str = "bf16", runtime: str = "eager") -> str:
    """The entry of the check file for `precision` in `runtime`: one for PyTorch's runtimes (autocast
    computes the same layers in both layouts), one per graph runtime that rounds on its own
    (`bf16_openvino`: OpenVINO's bf16 network with the fp32 skip of `SkipAddedRunner`)."""
    return precision if runtime in TORCH_RUNTIMES else f"{precision}_{runtime}"


def weights_sha256(folder: str | Path) -> str | None:
    """The sha256 of the weights `folder`'s model.json describes (what a stored check was run on)."""
    try:
        return json.loads((Path(folder) / MODEL_JSON).read_text())["weights"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_passed(folder: str | Path | None, precision: str = "bf16") -> bool:
    """Whether `folder`'s stored check says `precision` (an entry of `check_key`) costs nothing measurable
    for the weights now in the folder (an entry that names other weights is a check of a model since replaced)."""
    if folder is None or not (Path(folder) / CHECK_FILE).is_file():
        return False
    try:
        entry = json.loads((Path(folder) / CHECK_FILE).read_text())[precision]
        if "weights_sha256" in entry and entry["weights_sha256"] != weights_sha256(folder):
            return False
        return bool(entry["passed"])
    except (ValueError, KeyError, TypeError):  # a damaged or older file: not a pass
        return False


def verdict(fp32: dict, low: dict) -> dict:
    """Compare per-clip `{"psnr_y": [...], "tof": [...]}` of fp32 and a lower precision."""
    psnr_delta = sum(low["psnr_y"]) / len(low["psnr_y"]) - sum(fp32["psnr_y"]) / len(fp32["psnr_y"])
    tof_ratio = sum(low["tof"]) / max(1e-12, sum(fp32["tof"]))
    return {"mean_psnr_y_delta_db": round(psnr_delta, 4), "tof_ratio": round(tof_ratio, 4),
            "passed": psnr_delta >= -MAX_PSNR_LOSS and tof_ratio <= 1 + MAX_TOF_GAIN}
