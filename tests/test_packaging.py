"""A plain (non-editable) `pip install .` is a working vsrlab: the four console commands, their configs
and the shipped models come with the package, whatever the working folder."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vsr.io.synthetic import write_test_video
from vsr.io.video import probe

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("vsrlab-train", "vsrlab-evaluate", "vsrlab-export", "vsrlab-upscale")  # the Hydra apps; and vsrlab-web


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install .` (not editable) into a folder of its own; the dependencies are this environment's."""
    source, target = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("site")
    for name in ("pyproject.toml", "README.md"):  # a copy: setuptools builds in the source folder
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "vsr", source / "vsr", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, timeout=600)
    return target


def run_installed(installed: Path, command: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}  # the installed copy, not this checkout
    return subprocess.run([str(installed / "bin" / command), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_installed_upscale_command_uses_the_packaged_default_model(installed, tmp_path):
    assert all((installed / "bin" / c).is_file() for c in (*COMMANDS, "vsrlab-web"))
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=4, width=32, height=24)
    done = run_installed(installed, "vsrlab-upscale", "input=clip.mp4", "output=out.mp4", "progress=false",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(summary["weights"]).resolve().is_relative_to(installed.resolve())  # the packaged copy ran
    info = probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.num_frames) == (128, 96, 4) and clip.is_file()


@pytest.mark.slow
def test_installed_commands_read_their_packaged_configs(installed, tmp_path):
    for command in COMMANDS:
        shown = run_installed(installed, command, "--help", cwd=tmp_path)
        # the help text is composed from the packaged configs: option values appear as "(now ...)"
        assert shown.returncode == 0 and shown.stdout.count("(now ") >= 5, (command, shown.stdout[:300])
    refused = run_installed(installed, "vsrlab-evaluate", "compre=[]", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: compre=[]: no such option; did you mean compare? "
                                      "(vsrlab-evaluate --help lists the options)")
    page = run_installed(installed, "vsrlab-web", "--help", cwd=tmp_path)
    assert page.returncode == 0 and "--jobs JOBS" in page.stdout, page.stdout[:300]
    refused = run_installed(installed, "vsrlab-web", "denoize=1", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: denoize=1: no such option; did you mean denoise? (vsrlab-upscale --help lists the options)")
