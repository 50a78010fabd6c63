"""Vid4 (calendar, city, foliage, walk): the standard BI/BD test set.

Layout under `data.root` (BasicSR's Vid4):
    GT/<clip>/00000000.png ...        HR
    BIx4/<clip>/...                   LR x4, MATLAB bicubic (BI)
    BDx4/<clip>/...                   LR x4, Gaussian blur sigma 1.6 + subsampling (BD)
Other scales (BIx2, BDx3, ...) come from datasets/prepare.py or are made on the fly.
"""

from vsr.data.frames import FrameClips, check_root, choose_lr, clip_from_folders
from vsr.errors import UserError

CLIPS = ("calendar", "city", "foliage", "walk")
LAYOUT = "ROOT/GT/{calendar,city,foliage,walk}/*.png (+ ROOT/BIx4/<clip>/, ROOT/BDx4/<clip>/)"


class Vid4(FrameClips):
    """Every clip under GT/, with LR from `{protocol}x{scale}/` when stored (BI for bicubic, BD for blur).

    Args:
        root: the Vid4 folder.
        clips: clip names to use (null = every folder under GT/).
        lr: "auto" | "stored" | "degrade" (see `vsr.data.reds.REDS`).
        Other arguments: see `FrameClips`.
    """

    def __init__(self, root: str, scale: int = 4, degradation=None, clips: list[str] | None = None,
                 lr: str = "auto", **options):
        base = check_root(root, "Vid4", LAYOUT)
        if not (base / "GT").is_dir():
            raise UserError(f"data.root={root}: no GT folder; expected the Vid4 layout {LAYOUT} (see datasets/README.md)")
        names = list(clips) if clips else sorted(p.name for p in (base / "GT").iterdir() if p.is_dir())
        protocol = getattr(degradation, "protocol", None)
        lr_base = base / f"{protocol}x{scale}" if protocol else None
        found = []
        for name in names:
            if not (base / "GT" / name).is_dir():
                raise UserError(f"clip {name}: folder {base / 'GT' / name} not found (data.clips)")
            lr_dir = lr_base / name if lr_base is not None else None
            use = choose_lr(lr, lr_dir is not None and lr_dir.is_dir(), str(lr_base or base))
            found.append(clip_from_folders(name, base / "GT" / name, lr_dir if use else None))
        super().__init__(found, scale=scale, degradation=degradation, **options)
