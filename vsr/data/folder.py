"""Your own clips: a folder of clip folders of frames, HR only or HR + LR.

Layout under `data.root`:
    <clip>/0001.png ...              HR only (LR made by the degradation), or
    HR/<clip>/0001.png ...           HR, and
    LRx4/<clip>/0001.png ...         LR for scale 4 with the same frame names (optional; `data.lr_root`)
The last `num_val_clips` clips (sorted by name), or the named `val_clips`, are held out for validation.
"""

from pathlib import Path

from vsr.data.frames import FrameClips, check_root, choose_lr, clip_from_folders, list_images
from vsr.errors import UserError, check_choice

LAYOUT = "ROOT/<clip>/<frame>.png, or ROOT/HR/<clip>/<frame>.png with optional ROOT/LRx<scale>/<clip>/<frame>.png"


def split_names(names: list[str], split: str, val_clips, num_val_clips: int, root) -> list[str]:
    if val_clips:
        val = [str(v) for v in val_clips]
        unknown = sorted(set(val) - set(names))
        if unknown:
            raise UserError(f"data.val_clips: {', '.join(unknown)} not found under {root}")
    else:
        if len(names) <= num_val_clips:
            raise UserError(f"data.root={root} has {len(names)} clip folder(s); holding out num_val_clips="
                            f"{num_val_clips} for validation needs more (add clips or set data.val_clips)")
        val = names[len(names) - num_val_clips:]
    return [n for n in names if (n in val) == (split == "val")]


class FolderClips(FrameClips):
    """Clips from `root` (see the module docstring).

    Args:
        root: the folder of clip folders.
        split: "train" or "val".
        val_clips: clip names for validation (null: the last `num_val_clips` by name).
        lr_root: folder of LR clip folders (null: ROOT/LRx<scale> when it exists).
        lr: "auto" (stored LR when present, whatever the degradation) | "stored" | "degrade".
        Other arguments: see `FrameClips`.
    """

    def __init__(self, root: str, split: str = "train", scale: int = 4, degradation=None, val_clips=None,
                 num_val_clips: int = 1, lr_root: str | None = None, lr: str = "auto", **options):
        check_choice("data split", split, ("train", "val"))
        base = check_root(root, "folder", LAYOUT)
        hr_base = base / "HR" if (base / "HR").is_dir() else base
        lr_base = Path(lr_root).expanduser() if lr_root else base / f"LRx{scale}"
        if lr_root and not lr_base.is_dir():
            raise UserError(f"data.lr_root={lr_root}: folder not found")
        names = sorted(p.name for p in hr_base.iterdir()
                       if p.is_dir() and p.name != lr_base.name and not p.name.startswith(("LRx", ".")))
        names = [n for n in names if list_images(hr_base / n)]
        if not names:
            raise UserError(f"data.root={root}: no clip folders with frames; expected {LAYOUT}")
        clips = []
        for name in split_names(names, split, val_clips, num_val_clips, root):
            lr_dir = lr_base / name
            # stored LR here is the user's own: use it whatever the degradation (data.lr=degrade to ignore it)
            use = choose_lr(lr, lr_dir.is_dir(), str(lr_base))
            clips.append(clip_from_folders(name, hr_base / name, lr_dir if use else None))
        super().__init__(clips, scale=scale, degradation=degradation, **options)
