"""A compact copy of the corpus for a machine that receives only a few tens of MB (the lent GPU).

Photos are shrunk to `--max-side` (OpenCV area averaging, which also cleans them) and
stored as JPEG at `--quality`; training clips travel as their compressed source videos with a
line each in `videos.txt` (name, downscale) so that the other machine decodes them with
`datasets/prepare.py frames`. Held-out (`test`) footage never travels.

    python experiments/corpus/pack.py datasets/corpus .gpu_data/corpus --max-side 1600
"""

import argparse
import csv
import shutil
from pathlib import Path

import cv2

from vsr.data.corpus_sources import read_manifest, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-side", type=int, default=1600)
    parser.add_argument("--quality", type=int, default=94)
    args = parser.parse_args()
    rows = read_manifest()
    videos = []
    for row in rows:
        if row["split"] == "test":
            continue
        src = target(args.corpus, row)
        if row["kind"] == "photo":
            image = cv2.imread(str(src), cv2.IMREAD_COLOR)
            factor = args.max_side / max(image.shape[:2])
            if factor < 1:
                image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            dst = args.out / "photos" / row["split"] / f"{row['name']}.jpg"
            dst.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(dst), image, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        else:
            dst = args.out / "sources" / row["split"] / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            videos.append([row["split"], str(dst.relative_to(args.out)), row["downscale"] or "1"])
    with open(args.out / "videos.csv", "w", newline="") as f:
        csv.writer(f).writerows(videos)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
