"""The shipped models (used when upscale.py gets no weights=) and the settings they were measured with.

default: trained on the offline corpus with compressed LR (experiments/corpus/: best held out on
H.264 input, what users upscale); single-frame networks at x2, x3 and x4, which matched the recurrent
ones on validation in one pass instead of two (2.4-3x faster end to end), with the temporal filter
of denoise=auto after them.
clean: single-frame, trained on clean photographs, best held out on clean BI input (experiments/shipped_x4/,
the `fast` preset until 2026-12-07); fast: four 32-channel convolutions trained on the corpus like the
default, several times the speed of the others at a PSNR cost (experiments/corpus/); sharp: the recurrent corpus model
fine-tuned as a GAN (texture and adversarial terms), more natural by NIQE at a PSNR cost, with the
temporal filter and an unsharp mask after it against the flicker GAN texture brings (experiments/sharp/).
"""

from pathlib import Path

from vsr.weights import ROOT as WEIGHTS_ROOT

SHIPPED = {preset: WEIGHTS_ROOT / preset / "x4" for preset in ("default", "clean", "fast", "sharp")}
# Other factors of a preset, used where present: upscale.py picks the smallest that reaches the
# requested size (fit=4k on 1080p input runs x2 instead of computing x4 and shrinking it).
SHIPPED_FACTORS = {"default": {2: WEIGHTS_ROOT / "default" / "x2", 3: WEIGHTS_ROOT / "default" / "x3"}}
DEFAULT_WEIGHTS = SHIPPED["default"]
# ensemble=auto: the folders measured flip-averaged. None since 2026-12-06: every shipped model runs in
# one pass (the default's flip average gained 0.01-0.07 dB on validation for twice the time; averaging
# flips would soften the texture `sharp` is for); other weights: off.
FLIP_AVERAGED: tuple[Path, ...] = ()
# denoise=auto and sharpen=auto: the settings each shipped model was measured with. The default: its
# temporal filter at 0.5, the strength that won on the validation split at x4 (+0.06 dB on compressed LR;
# x2 +0.03, x3 +0.07: experiments/corpus/README.md). sharp: the filter at 0.5 then an unsharp mask of
# 0.5, the best trade of warp error against NIQE on the validation split (experiments/sharp/README.md).
# Other weights: off.
AUTO_FILTERS = {folder: {"denoise": 0.5} for folder in (SHIPPED["default"], *SHIPPED_FACTORS["default"].values())}
AUTO_FILTERS[SHIPPED["sharp"]] = {"denoise": 0.5, "sharpen": 0.5}


def shipped_factors(preset: str) -> dict[int, Path]:
    """The factors a shipped preset has weights for: its x4 folder, and the others that are present."""
    found = {4: SHIPPED[preset]}
    found.update({f: folder for f, folder in SHIPPED_FACTORS.get(preset, {}).items() if (folder / "model.json").is_file()})
    return found


def is_one_of(folder: str | Path, folders) -> bool:
    return Path(folder).resolve() in {Path(f).resolve() for f in folders}


def auto_ensemble(folder: str | Path) -> int:
    """`ensemble=auto` for the model in `folder`, the one rule upscale.py, evaluate.py and
    `Upscaler.from_dir` share: 2 for the shipped models measured flip-averaged, else 1."""
    return 2 if is_one_of(folder, FLIP_AVERAGED) else 1


def auto_filter(folder: str | Path, name: str) -> float:
    """`denoise=auto` / `sharpen=auto` (`name`) for the model in `folder` (shared as `auto_ensemble`):
    the setting it was measured with, else 0 (off)."""
    return next((settings.get(name, 0.0) for shipped, settings in AUTO_FILTERS.items() if is_one_of(folder, [shipped])),
                0.0)
