"""REDS (NTIRE 2019): 720p clips of 100 frames, with the REDS4 split of EDVR / BasicVSR.

Layout under `data.root` (the official zips unpacked side by side):
    train_sharp/NNN/00000000.png ... 00000099.png          HR, clips 000-239
    train_sharp_bicubic/X4/NNN/00000000.png ...            LR x4 (MATLAB bicubic), optional
    val_sharp/NNN/..., val_sharp_bicubic/X4/NNN/...         the official validation clips 000-029, optional
Training uses train_sharp without the REDS4 clips (000, 011, 015, 020) plus val_sharp (named
"val_NNN"), i.e. 266 clips as in BasicVSR; validation uses the REDS4 clips.
Other scales and degradations: LR from `datasets/prepare.py` (train_sharp_bicubic/X2, train_sharp_BD/X4)
or on the fly from HR.
"""

from vsr.data.frames import FrameClips, check_root, choose_lr, clip_from_folders
from vsr.errors import UserError, check_choice

REDS4 = ("000", "011", "015", "020")
LAYOUT = "ROOT/train_sharp/NNN/00000000.png (+ train_sharp_bicubic/X4/NNN/..., val_sharp/NNN/...)"
LR_SUFFIX = {"BI": "_bicubic", "BD": "_BD"}


def lr_folder(hr_folder: str, protocol: str | None, scale: int) -> str | None:
    """Where LR frames of `protocol` at `scale` are stored, REDS-style: train_sharp_bicubic/X4."""
    return f"{hr_folder}{LR_SUFFIX[protocol]}/X{scale}" if protocol in LR_SUFFIX else None


def clip_id(value) -> str:
    return f"{value:03d}" if isinstance(value, int) else str(value)


class REDS(FrameClips):
    """REDS clips. `split="train"`: all but `val_clips` (+ val_sharp); `split="val"`: `val_clips` (REDS4).

    Args:
        root: the REDS folder (see the module docstring).
        split: "train" or "val".
        val_clips: clip ids held out of training and used for validation (default REDS4).
        include_val_folder: train also on val_sharp clips when present.
        lr: "auto" (stored LR when present for this scale and degradation protocol, else on the
            fly), "stored" (require it) or "degrade" (always from HR).
        Other arguments: see `FrameClips`.
    """

    def __init__(self, root: str, split: str = "train", scale: int = 4, degradation=None,
                 val_clips=REDS4, include_val_folder: bool = True, lr: str = "auto", **options):
        check_choice("data split", split, ("train", "val"))
        base = check_root(root, "REDS", LAYOUT)
        if not (base / "train_sharp").is_dir():
            raise UserError(f"data.root={root}: no train_sharp folder; expected the REDS layout {LAYOUT} "
                            "(see datasets/README.md)")
        held_out = {clip_id(v) for v in (val_clips or ())}
        protocol = getattr(degradation, "protocol", None)
        folders = ["train_sharp"] + (["val_sharp"] if split == "train" and include_val_folder
                                     and (base / "val_sharp").is_dir() else [])
        clips = []
        for folder in folders:
            for clip_dir in sorted(p for p in (base / folder).iterdir() if p.is_dir()):
                is_val = folder == "train_sharp" and clip_dir.name in held_out
                if is_val != (split == "val"):
                    continue
                name = clip_dir.name if folder == "train_sharp" else f"val_{clip_dir.name}"
                stored = lr_folder(folder, protocol, scale)
                lr_dir = base / stored / clip_dir.name if stored else None
                use = choose_lr(lr, lr_dir is not None and lr_dir.is_dir(),
                                f"{base / stored}" if stored else f"{base} (degradation without stored LR)")
                clips.append(clip_from_folders(name, clip_dir, lr_dir if use else None))
        if split == "val":
            missing = sorted(held_out - {c.name for c in clips})
            if missing:
                raise UserError(f"data.root={root}: validation clip(s) {', '.join(missing)} not in train_sharp; "
                                "restore them or set data.val_clips=[...] to clips you have")
        elif not clips:
            raise UserError(f"data.root={root}: no training clips in train_sharp besides the validation clips")
        super().__init__(clips, scale=scale, degradation=degradation, **options)
