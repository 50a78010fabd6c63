"""notebooks/*.ipynb execute top to bottom on CPU and produce what they describe."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute(name: str, timeout: int = 600) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel (it inherits this process's environment) from the repository
    root; a failing cell raises CellExecutionError with the cell's traceback."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def text_output(nb: nbformat.NotebookNode) -> str:
    """What the cells printed and the Markdown they displayed."""
    return "\n".join(out.get("text", "") + out.get("data", {}).get("text/markdown", "")
                     for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", []))


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    assert all(not cell.outputs and cell.execution_count is None for cell in code), \
        f"{path.name} has stored outputs: clear them before committing"


@pytest.mark.slow
def test_quickstart_trains_evaluates_exports_and_upscales(tmp_path, monkeypatch):
    run = tmp_path / "quickstart"
    monkeypatch.setenv("VSR_QUICKSTART_DIR", str(run))
    nb = execute("quickstart.ipynb")

    assert (run / "checkpoints" / "last.ckpt").is_file()
    report = json.loads((run / "eval" / "metrics.json").read_text())
    assert report["scale"] == 4 and report["model"] != "bicubic"
    model, bicubic = report["mean"]["psnr_y"], report["baselines"]["bicubic"]["mean"]["psnr_y"]
    assert 20 < bicubic < 45 and abs(model - bicubic) < 3  # a few steps: close to bicubic, not broken
    assert report["mean"]["tof"] is not None
    plots = {p.name for p in (run / "eval" / "plots").iterdir()}
    assert any(n.endswith("_strip.png") for n in plots) and any(n.endswith("_flicker.png") for n in plots)

    export = run / "export"
    assert (export / "model.safetensors").stat().st_size > 10_000
    assert json.loads((export / "model.json").read_text())["scale"] == 4

    from vsr.io.video import probe
    src, out = probe(run / "clip.mp4"), probe(run / "clip_x4.mp4")
    assert (out.width, out.height) == (4 * src.width, 4 * src.height)
    assert out.num_frames == src.num_frames == 12
    assert out.has_audio and abs(out.fps - src.fps) < 1e-6

    text = text_output(nb)
    assert "PSNR-Y" in text and "12 frames of 256x192" in text
    assert images(nb) >= 4  # loss curve, strip, flicker curve, input vs upscaled frame


@pytest.mark.slow
def test_compare_runs_plots_scale_and_model_vs_baseline(entry, tmp_path, monkeypatch):
    """Four evaluation runs (bicubic and lanczos at x2 and x4) made by one evaluate.py sweep."""
    sweep = tmp_path / "sweep"
    result = entry("evaluate.py", "-m", "model=bicubic,lanczos", "scale=2,4", "data=sample",
                       "data.val.num_clips=1", "data.val.num_frames=3", "data.val.patch_size=64",
                       "report.plots=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(sweep.rglob("metrics.json"))) == 4

    figures = tmp_path / "figures"
    monkeypatch.setenv("VSR_RUNS", str(sweep))
    monkeypatch.setenv("VSR_FIGURES", str(figures))
    nb = execute("compare_runs.ipynb")
    text = text_output(nb)
    assert "4 runs, 6 rows" in text  # bicubic x2/x4 (no baseline: it is bicubic), lanczos x2/x4 + bicubic each
    assert "| x2 | lanczos | bicubic |" in text and "| x4 | lanczos | bicubic |" in text  # the gain table
    assert (figures / "scale_x_metric.png").stat().st_size > 5_000
    assert (figures / "model_vs_baseline.png").stat().st_size > 5_000
    assert images(nb) >= 2
