"""Vimeo-90K septuplets: 64612 training and 7824 test sequences of 7 frames at 448x256.

Layout under `data.root` (vimeo_septuplet.zip unpacked):
    sequences/XXXXX/YYYY/im1.png ... im7.png     HR
    sep_trainlist.txt, sep_testlist.txt          one "XXXXX/YYYY" per line
    sequences_BIx4/XXXXX/YYYY/im1.png ...        LR (datasets/prepare.py, or BasicSR's
                                                 vimeo_septuplet_matlabLRx4/sequences), optional
"""

from pathlib import Path

from vsr.data.frames import Clip, FrameClips, check_root, choose_lr
from vsr.errors import UserError, check_choice

LAYOUT = "ROOT/sequences/XXXXX/YYYY/im1.png..im7.png with ROOT/sep_trainlist.txt and sep_testlist.txt"
FRAMES = tuple(f"im{i}.png" for i in range(1, 8))


def lr_folders(base: Path, protocol: str | None, scale: int) -> list[Path]:
    if protocol is None:
        return []
    found = [base / f"sequences_{protocol}x{scale}"]
    if protocol == "BI":
        found.append(base / f"vimeo_septuplet_matlabLRx{scale}" / "sequences")
    return found


class Vimeo90K(FrameClips):
    """Vimeo-90K septuplets listed in sep_trainlist.txt (`split="train"`) or sep_testlist.txt (`"val"`).

    Args:
        root: the vimeo_septuplet folder.
        split: "train" or "val" (the test list).
        num_clips: use only the first N sequences of the list (null = all), e.g. for quick validation.
        lr: "auto" | "stored" | "degrade" (see `vsr.data.reds.REDS`).
        Other arguments: see `FrameClips`. Frame files are checked when read (the list is long).
    """

    def __init__(self, root: str, split: str = "train", scale: int = 4, degradation=None,
                 num_clips: int | None = None, lr: str = "auto", **options):
        check_choice("data split", split, ("train", "val"))
        base = check_root(root, "Vimeo-90K", LAYOUT)
        listing = base / ("sep_trainlist.txt" if split == "train" else "sep_testlist.txt")
        if not listing.is_file() or not (base / "sequences").is_dir():
            raise UserError(f"data.root={root}: {listing.name} or sequences/ not found; expected the Vimeo-90K "
                            f"layout {LAYOUT} (see datasets/README.md)")
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        if num_clips is not None:
            names = names[:num_clips]
        stored = next((d for d in lr_folders(base, getattr(degradation, "protocol", None), scale) if d.is_dir()), None)
        use = choose_lr(lr, stored is not None, f"{base} (sequences_BIx{scale})")
        clips = []
        for name in names:
            hr = [base / "sequences" / name / f for f in FRAMES]
            if not hr[0].parent.is_dir():
                raise UserError(f"clip {name}: folder {hr[0].parent} is missing ({listing.name} lists it)")
            clips.append(Clip(name, hr, [stored / name / f for f in FRAMES] if use else None))
        super().__init__(clips, scale=scale, degradation=degradation, **options)
