"""Export a trained interpolator: `python -m vsr.interpolation.package CKPT DIR [--ensemble]`.

Writes DIR/model.safetensors (EMA weights) and DIR/model.json in the inference format that
`vsr.inference.load` reads (architecture + sha256), with `task: interpolation` and no scale.
upscale.py's `interpolator=DIR` and evaluate.py's `checkpoint=DIR` take the folder.
"""

import datetime
import json
import sys
from pathlib import Path

import torch

import vsr
from vsr.errors import UserError
from vsr.export.package import write_weights
from vsr.inference.model import FORMAT_NAME, FORMAT_VERSION, MODEL_JSON
from vsr.training.checkpoint import load_generator


def export_interpolator(checkpoint: str | Path, output_dir: str | Path, metrics: dict | None = None,
                        ensemble: bool = False) -> dict:
    """`ensemble`: the exported architecture averages the prediction with the frames swapped (2x work)."""
    model, meta = load_generator(checkpoint)
    if getattr(model, "task", None) != "interpolation":
        raise UserError(f"checkpoint={checkpoint} holds a {type(model).__name__}, not a frame interpolator; "
                        "use export.py for super-resolution models")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = write_weights(model.float().cpu(), out)
    info = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "task": "interpolation",
        "architecture": {**meta["generator_config"], **({"ensemble": True} if ensemble else {})}, "scale": None, "temporal": True,
        "input": {"call": "model(frame0, frame1, t)", "layout": "(B, 3, H, W) each, t float or (B,)",
                  "range": [0, 1], "color": "RGB", "dtype": "float32"},
        "weights": weights,
        "source": {"kind": "vsrlab-checkpoint", "file": Path(checkpoint).name, "global_step": meta["global_step"],
                   "weights": "ema"},
        "training_config": meta.get("training_config"), "metrics": metrics,
        "versions": {"vsrlab": vsr.__version__, "torch": torch.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / MODEL_JSON).write_text(json.dumps(info, indent=2, default=str) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    ensemble = "--ensemble" in args
    args = [a for a in args if a != "--ensemble"]
    if len(args) not in (2, 3):
        raise SystemExit("usage: python -m vsr.interpolation.package CKPT DIR [metrics.json] [--ensemble]")
    metrics = json.loads(Path(args[2]).read_text()) if len(args) == 3 else None
    try:
        info = export_interpolator(args[0], args[1], metrics, ensemble)
    except UserError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"exported {info['architecture']['_target_']} ({info['weights']['num_params']:,} parameters, "
          f"{info['weights']['bytes'] / 1e6:.2f} MB) to {args[1]}")


if __name__ == "__main__":
    main()
