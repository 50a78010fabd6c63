"""`upscale.py input=DIR output=OUTDIR`: every video and image under a folder, names and sub-folders kept.

Each output is written under a temporary name and renamed when complete, so an output that exists is
whole: a re-run skips it and redoes the files a crash or a failure left undone (`overwrite=true`
redoes them all). A file that fails is reported and the others go on; a table of every file ends
the run, then one JSON line for scripts.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from vsr.errors import UserError
from vsr.inference.stills import IMAGE_INPUTS, IMAGE_OUTPUTS
from vsr.io.video import VIDEO_EXTENSIONS
from vsr.io.writer import OUTPUT_EXTENSIONS
from vsr.options import UpscaleOptions, updated


def is_folder_job(cfg: UpscaleOptions) -> bool:
    return cfg.input is not None and Path(str(cfg.input)).is_dir()


def find_inputs(src: Path, dst: Path) -> list[Path]:
    """Videos and images under `src`, in name order; hidden files and anything under `dst` left out."""
    kinds = VIDEO_EXTENSIONS + IMAGE_INPUTS
    dst = dst.resolve()
    return sorted(p for p in src.rglob("*")
                  if p.is_file() and p.suffix.lower() in kinds and not p.name.startswith(".")
                  and dst not in p.resolve().parents)


def output_for(file: Path, src: Path, dst: Path) -> Path:
    """The output path of `file`: the same path under `dst`; a container or image format that cannot
    be written (WebM, TIFF, BMP) becomes .mp4 / .png."""
    target = dst / file.relative_to(src)
    suffix = file.suffix.lower()
    if suffix in VIDEO_EXTENSIONS and suffix not in OUTPUT_EXTENSIONS:
        return target.with_suffix(".mp4")
    if suffix in IMAGE_INPUTS and suffix not in IMAGE_OUTPUTS:
        return target.with_suffix(".png")
    return target


def check_folders(cfg: UpscaleOptions) -> tuple[Path, Path]:
    src = Path(str(cfg.input))
    if not cfg.output:
        raise UserError(f"input={src} is a folder: give output=FOLDER for the upscaled files, e.g. output={src.name}_x4")
    dst = Path(str(cfg.output))
    if dst.exists() and not dst.is_dir():
        raise UserError(f"output={dst} is a file, but input={src} is a folder: give output=FOLDER")
    if dst.suffix.lower() in OUTPUT_EXTENSIONS + IMAGE_OUTPUTS and not dst.exists():
        raise UserError(f"output={dst} looks like a file name, but input={src} is a folder: give output=FOLDER")
    if dst.resolve() == src.resolve():
        raise UserError(f"output={dst} is the input folder; choose another folder (inputs are never replaced)")
    if cfg.stills is not None:
        raise UserError(f"stills= takes one video, but input={src} is a folder; drop stills= or give a video")
    return src, dst


def upscale_folder(cfg: UpscaleOptions, upscale_one, overwrite: bool) -> dict:
    """Upscale every file of the folder `cfg.input` into `cfg.output` with `upscale_one(cfg_for_file)`."""
    src, dst = check_folders(cfg)
    files = find_inputs(src, dst)
    if not files:
        raise UserError(f"input={src}: no videos ({' '.join(VIDEO_EXTENSIONS)}) or images "
                        f"({' '.join(IMAGE_INPUTS)}) in the folder or its sub-folders")
    rows: list[dict[str, Any]] = []
    for index, file in enumerate(files, 1):
        target = output_for(file, src, dst)
        name = str(file.relative_to(src))
        if target.exists() and not overwrite:
            rows.append({"file": name, "output": str(target), "result": "done earlier", "frames": None, "seconds": None})
            continue
        print(f"[{index}/{len(files)}] {name} -> {target}", file=sys.stderr, flush=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        try:
            summary = upscale_one(with_paths(cfg, file, target))
            row: dict[str, Any] = {"result": "upscaled", "frames": summary.get("frames")}
        except UserError as err:  # one clear line, as for a single file; the others go on
            row = {"result": f"failed: {err}", "frames": None}
        except Exception as err:  # an unexpected error in one file must not cost the rest of the folder
            first_line = (str(err).strip().splitlines() or [""])[0]
            row = {"result": f"failed: {type(err).__name__}: {first_line}", "frames": None}
        rows.append({"file": name, "output": str(target), **row, "seconds": round(time.perf_counter() - start, 1)})
    print(table(rows))
    failed = [r for r in rows if r["result"].startswith("failed")]
    summary = {"input": str(src), "output": str(dst), "files": rows, "failed": len(failed)}
    print(json.dumps(summary))
    if failed:
        raise UserError(f"{len(failed)} of {len(rows)} files failed (named in the table above); "
                        f"the others are in {dst}; a re-run redoes only the files not done")
    return summary


def with_paths(cfg: UpscaleOptions, source: Path, target: Path) -> UpscaleOptions:
    """`cfg` with input= and output= replaced."""
    return updated(cfg, input=str(source), output=str(target))


def table(rows: list[dict]) -> str:
    lines = ["| file | frames | seconds | result |", "|---|---:|---:|---|"]
    for r in rows:
        frames = "" if r["frames"] is None else str(r["frames"])
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['file']} | {frames} | {seconds} | {r['result']} |")
    return "\n".join(lines)
