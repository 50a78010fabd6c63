"""Collect several evaluation runs (e.g. a scale sweep) into one table: scale x metric, model vs baselines,
each row with the data its run scored.

    python -m vsr.evaluation.collect multirun/eval/DATE/TIME [RUN_DIR ...] [--output DIR]
    -> DIR/summary.md and DIR/summary.csv (DIR defaults to the first path)

`python evaluate.py -m scale=2,4,8 ...` runs this by itself at the end of the sweep.
"""

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from vsr.errors import UserError, one_line_errors
from vsr.evaluation.reports import LABELS, describe_data, format_cell, format_value, systems
from vsr.evaluation.scoring import METRICS
from vsr.io.atomic import write_atomic


def find_metrics(paths: list[str | Path]) -> list[Path]:
    """`metrics.json` files: each path is a run directory or a folder holding runs (searched recursively)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.name == "metrics.json":
            files.append(path)
        elif path.is_dir():
            found = sorted(path.rglob("metrics.json"))
            if not found:
                raise UserError(f"{path}: no metrics.json below it (run evaluate.py there first)")
            files += found
        else:
            raise UserError(f"{path}: no such run directory")
    return files


def run_data(report: dict, run: Path) -> str:
    """The data a run scored: its metrics.json's, else from the config Hydra saved beside it."""
    # a bare "data" is the placeholder interpolation reports wrote before they named their data
    if report.get("data") not in (None, "data"):
        return report["data"]
    config = run / ".hydra" / "config.yaml"
    return describe_data(OmegaConf.load(config).get("data")) if config.is_file() else "unknown"


def collect_rows(files: list[Path]) -> list[dict]:
    """One row per (run, system): scale, data, system, role (model | baseline), run dir and mean metrics."""
    rows = []
    for file in files:
        try:
            report = json.loads(file.read_text())
            results = systems(report)
        except (json.JSONDecodeError, KeyError) as err:
            raise UserError(f"{file}: not an evaluate.py metrics.json ({type(err).__name__}: {err})") from None
        for i, (name, result) in enumerate(results.items()):
            rows.append({"scale": report.get("scale"), "data": run_data(report, file.parent), "system": name,
                         "role": "model" if i == 0 else "baseline", "run": str(file.parent),
                         **{k: result["mean"].get(k) for k in METRICS}})
    rows.sort(key=lambda r: (r["scale"] or 0, r["data"], r["role"] != "model", r["system"], r["run"]))
    return rows


def write_tables(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """summary.md and summary.csv in `out_dir`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scale", "data", "system", "role", *METRICS, "run"])
    for r in rows:
        writer.writerow([r["scale"], r["data"], r["system"], r["role"], *(format_cell(r[k]) for k in METRICS),
                         r["run"]])
    lines = ["# Evaluation summary", "",
             "| scale | data | system | " + " | ".join(LABELS[k] for k in METRICS) + " | run |",
             "|---:|---|---|" + "---:|" * len(METRICS) + "---|"]
    for r in rows:
        name = f"**{r['system']}**" if r["role"] == "model" else r["system"]
        values = " | ".join(format_value(r[k], k) for k in METRICS)
        lines.append(f"| x{r['scale']} | `{r['data']}` | {name} | {values} | {r['run']} |")
    md, csv_path = Path(out_dir) / "summary.md", Path(out_dir) / "summary.csv"
    write_atomic(md, "\n".join(lines) + "\n")
    write_atomic(csv_path, buf.getvalue())
    return md, csv_path


def collect(paths: list[str | Path], out_dir: str | Path | None = None) -> tuple[Path, Path]:
    rows = collect_rows(find_metrics(paths))
    return write_tables(rows, Path(out_dir if out_dir is not None else paths[0]))


class CollectRuns(Callback):
    """Hydra callback: after `evaluate.py -m ...`, write summary.md/csv in the sweep directory."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if any(sweep_dir.rglob("metrics.json")):
            md, _ = collect([sweep_dir])
            print(f"summary of the sweep: {md}")


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="run directories or folders of runs (sweep directories)")
    parser.add_argument("--output", help="where summary.md/csv go (default: the first path)")
    args = parser.parse_args(argv)
    md, _ = collect(args.paths, args.output)
    sys.stdout.write(md.read_text())


if __name__ == "__main__":
    main()
