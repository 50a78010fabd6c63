"""Score an SR clip against its GT clip with every metric of the contract, per frame and per clip;
without a GT clip, the metrics that need none (NIQE, warp error)."""

import math

import torch

from vsr.errors import check_choice
from vsr.metrics import LpipsUnavailable, load_lpips, lpips_distance, psnr, ssim, tlp, tof, warp_error
from vsr.metrics.fidelity import check_pair, crop
from vsr.metrics.flow import FLOW_METHODS, RaftFlow
from vsr.metrics.niqe import MIN_SIDE, niqe

METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "lpips", "niqe", "tof", "tlp", "warp_error")
PAIR_METRICS = ("tof", "tlp", "warp_error")  # one value per pair of consecutive frames
NO_REFERENCE = ("niqe", "warp_error")  # need no GT
LPIPS_MODES = ("auto", "off", "random")


class Scorer:
    """Computes `METRICS` for clips; metrics that cannot be computed are listed in `skipped`.

    Args:
        crop_border: pixels dropped at each border before every metric (BasicSR: the scale).
        lpips: "auto" (AlexNet backbone from disk, else skipped), "off", or "random"
            (random backbone: plumbing tests only, flagged in `notes`).
        lpips_backbone: path of torchvision's alexnet-owt-7be5be79.pth (default: torch hub cache).
        niqe: compute NIQE (no reference; frames of at least MIN_SIDE pixels a side after the crop).
        flicker: compute tof, tlp and warp_error.
        flow: flow for tof and warp_error: OpenCV "farneback" (TecoGAN) or "dis", or "raft"
            (torchvision RAFT-small, weights from `flow_weights` or the torch hub cache).
        device: where LPIPS and RAFT run.
    """

    def __init__(self, crop_border: int = 0, lpips: str = "auto", lpips_backbone: str | None = None,
                 flicker: bool = True, flow: str = "farneback", flow_weights: str | None = None,
                 lpips_batch: int = 8, device: str = "cpu", niqe: bool = True):
        check_choice("metrics.lpips", lpips, LPIPS_MODES)
        check_choice("metrics.flow", flow, FLOW_METHODS)
        self.crop_border, self.flicker, self.flow, self.lpips_batch = crop_border, flicker, flow, lpips_batch
        self.niqe = niqe
        self.flow_method = RaftFlow(flow_weights, device=device) if flicker and flow == "raft" else flow
        self.skipped: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self.lpips_model = None
        if lpips == "off":
            self.skipped.update(lpips="metrics.lpips=off", tlp="metrics.lpips=off")
        else:
            try:
                self.lpips_model = load_lpips(lpips_backbone, random_backbone=lpips == "random", device=device)
            except LpipsUnavailable as err:
                self.skipped.update(lpips=str(err), tlp=str(err))
            if lpips == "random":
                self.notes["lpips"] = ("metrics.lpips=random: random AlexNet backbone, for plumbing tests; "
                                       "lpips and tlp values are NOT LPIPS")
        if not flicker:
            for key in PAIR_METRICS:
                self.skipped.setdefault(key, "metrics.flicker=false")
        if not niqe:
            self.skipped["niqe"] = "metrics.niqe=false"

    def score(self, sr: torch.Tensor, gt: torch.Tensor | None) -> dict[str, torch.Tensor | None]:
        """Per-frame values `(T,)` (flicker: per pair `(T-1,)`) for each metric; None when skipped.
        With `gt=None` only the NO_REFERENCE metrics are computed."""
        if gt is not None:
            check_pair(sr, gt)
            gt = crop(gt, self.crop_border)
        sr = crop(sr, self.crop_border)
        values: dict[str, torch.Tensor | None] = dict.fromkeys(METRICS)
        if self.niqe and min(sr.shape[-2:]) >= MIN_SIDE:
            values["niqe"] = niqe(sr)
        if gt is None:
            if self.flicker:
                values["warp_error"] = warp_error(sr, self.flow_method)
            return values
        values["psnr_y"] = psnr(sr, gt, y_channel=True)
        values["ssim_y"] = ssim(sr, gt, y_channel=True)
        values["psnr_rgb"] = psnr(sr, gt)
        if self.lpips_model is not None:
            values["lpips"] = lpips_distance(self.lpips_model, sr, gt, self.lpips_batch)
        if self.flicker:
            values["tof"] = tof(sr, gt, self.flow_method)
            values["warp_error"] = warp_error(sr, self.flow_method)
            if self.lpips_model is not None:
                values["tlp"] = tlp(sr, gt, self.lpips_model, self.lpips_batch)
        return values


def clip_summary(values: dict[str, torch.Tensor | None]) -> dict[str, float | None]:
    """Mean over frames (or frame pairs) per metric; None when skipped or with no frame pair."""
    out = {}
    for key in METRICS:
        v = values.get(key)
        out[key] = None if v is None or v.numel() == 0 or torch.isnan(v).all() else float(v.nanmean())
    return out


def mean_over_clips(clips: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Mean of the clip means (BasicSR averages clips, not frames), skipping clips without a value."""
    out = {}
    for key in METRICS:
        vals = [c[key] for c in clips if c.get(key) is not None]
        out[key] = math.fsum(vals) / len(vals) if vals else None
    return out
