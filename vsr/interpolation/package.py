"""`python -m vsr.interpolation.package CKPT DIR [metrics.json] [--ensemble]`: the older command for
`python export.py checkpoint=CKPT output_dir=DIR [ensemble=true]`, kept working (it replaces DIR's export)."""

import json
import sys
from pathlib import Path

from vsr.errors import UserError
from vsr.export import run


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    ensemble = "--ensemble" in args
    args = [a for a in args if a != "--ensemble"]
    if len(args) not in (2, 3):
        raise SystemExit("usage: python -m vsr.interpolation.package CKPT DIR [metrics.json] [--ensemble]")
    try:
        if len(args) == 3:
            json.loads(Path(args[2]).read_text())  # a bad file is named before any work
        run({"checkpoint": args[0], "output_dir": args[1], "metrics": args[2] if len(args) == 3 else None,
             "ensemble": ensemble, "overwrite": True})
    except (UserError, OSError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
