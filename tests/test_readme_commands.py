"""Every command in the README's ```bash blocks (then its ```python blocks) and in each entry
point's `--help` examples, run as a new user would on a fresh clone, offline: in one scratch folder, in the order the README gives
them (training makes runs/x4, export makes `exported`, upscale uses it), with tiny settings
appended and the input files they name made here. A command that needs what this machine lacks
(a GPU, a SLURM cluster, a downloaded dataset) must refuse in one line naming what is missing.
A new command that no rule below knows fails the test: give it a rule."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_export import TINY_RRDB
from tiny_models import tiny

ROOT = Path(__file__).resolve().parents[1]
HELP = ROOT / "conf" / "hydra" / "help"

MODEL = ["model.num_feat=8", "model.num_block=1", "model.num_grow_ch=4", "model.flow_levels=2",
         "model.flow_channels=[8,4]"]
STEPS = ["data.train.patch_size=64", "data.train.num_frames=3", "data.batch_size=1", "data.num_workers=0",
         "trainer.max_steps=2", "trainer.enable_progress_bar=false", "training.warmup_steps=1"]
SAMPLE_VAL = ["data.val.num_clips=1", "data.val.num_frames=3", "data.val.patch_size=64"]
TRAIN = [*MODEL, *STEPS, *SAMPLE_VAL]
GAN = ["discriminator.num_feat=8", "loss.perceptual.layer_weights={conv1_2:1.0}"]  # loss=gan and the demo only
EVAL = ["report.plots=false", "metrics.flicker=false"]
# Documented values this test cannot afford as written, each replaced by one that does the same on its inputs.
SHORTENED = {"stills=[120,480]": "stills=[1,3]"}  # its clips have 4 frames, not 481

# (pattern, what must happen, settings appended). First match wins. "refuse:A|B": one line naming A or B
# (a recipe on this machine meets the missing GPU first, on a GPU machine the missing dataset).
RULES = [
    (r"^make test|pytest", "suite", []),
    (r"hydra/launcher=slurm", "refuse:sbatch", []),
    (r"experiment=reds", "refuse:no CUDA GPU|datasets/README.md", []),
    (r"trainer=gpu|accelerator=gpu", "refuse:no CUDA GPU", []),
    (r"prepare\.py check reds", "refuse:datasets/REDS", []),
    (r"data=reds|data=vid4", "refuse:datasets/README.md", []),
    (r"precision=fp16", "refuse:precision=fp16", []),
    (r"app\.py .*device=cuda", "refuse:CUDA is not available", []),
    (r"app\.py", "serve", []),
    (r"^make demo", "demo", []),
    (r"--help|--cfg", "run", []),
    (r"train\.py .*(loss=gan|experiment=demo)", "run", [*TRAIN, *GAN]),
    (r"train\.py .*data=folder", "run", [*MODEL, *STEPS]),
    (r"train\.py .*-m ", "run", TRAIN),
    (r"train\.py .*resume=", "run", ["trainer.max_steps=2"]),
    (r"train\.py", "run", [*TRAIN, "hydra.run.dir=runs/other"]),
    (r"evaluate\.py .*data=sample", "run", [*SAMPLE_VAL, *EVAL]),
    (r"evaluate\.py", "run", EVAL),
    (r"export\.py", "run", ["overwrite=true"]),
    (r"collect", "run", []),
    (r"upscale\.py", "run", ["overwrite=true"]),
]


def commands_of(text: str) -> list[str]:
    """Shell commands of ```bash blocks: continuation lines joined, comments dropped."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = shlex.split(line, comments=True)
            if command:
                found.append(command)
    return found


def help_examples(name: str) -> list[list[str]]:
    """The `== Examples ==` lines of a --help text, without their trailing explanations."""
    template = yaml.safe_load((HELP / f"{name}.yaml").read_text())["template"]  # as written, ${...} unresolved
    template = re.sub(r"\$\{vsr\.command:(\w+)\}", r"python \1.py", template)  # as `python NAME.py --help` shows it
    block = template.split("== Examples ==", 1)[1].split("==", 1)[0]
    examples = []
    for line in block.strip().splitlines():
        line = re.split(r"\s{3,}", line.strip())[0]  # "command    what it does"
        examples.append(shlex.split(line))
    return examples


def rule_for(command: list[str]) -> tuple[str, list[str]]:
    text = " ".join(command)
    for pattern, kind, extra in RULES:
        if re.search(pattern, text):
            return kind, extra
    raise AssertionError(f"no rule for the documented command {text!r}: add one to RULES")


def as_run_here(command: list[str]) -> list[str]:
    """`.venv/bin/python X.py ...` / `python X.py ...` with this interpreter and this checkout's X.py."""
    if command[0] in (".venv/bin/python", "python"):
        command = [sys.executable, *command[1:]]
        if command[1].endswith(".py"):
            command[1] = str(ROOT / command[1])
    return command


def make_inputs(work: Path) -> None:
    """The files the documented commands name, as a user would have them (small)."""
    from PIL import Image

    from vsr.io.synthetic import write_test_video

    for name in ("in.mp4", "clip.mp4", "1080p.mp4", "film.mkv", "día 1, toma 2.mp4", "clips/día 1, toma 2.mp4"):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        write_test_video(work / name, num_frames=4, width=48, height=32)
    (work / "out").mkdir()
    Image.new("RGB", (24, 16), (120, 60, 30)).save(work / "photo.png")
    for clip in ("clip_a", "clip_b"):  # data=folder holds the last clip out for validation
        frames = work / "frames" / clip
        frames.mkdir(parents=True)
        for i in range(6):
            Image.effect_noise((96, 96), 40 + i).convert("RGB").save(frames / f"{i:04d}.png")
    model = tiny(TINY_RRDB)  # ESRGAN's key layout, as RealESRGAN_x4plus.pth has it (a tiny one)
    state = {k.replace("trunk.", "").replace("upsampler.", ""): v for k, v in model.state_dict().items()}
    torch.save({"params_ema": state}, work / "RealESRGAN_x4plus.pth")


PLACEHOLDERS = {"EXPORT_DIR": "exported", "CKPT": "runs/x4/checkpoints/last.ckpt", "PATH": "frames", "DIR": "stills"}


def placeholders_filled(command: list[str]) -> list[str]:
    return [re.sub(r"=(EXPORT_DIR|CKPT|PATH|DIR)\b", lambda m: "=" + PLACEHOLDERS[m.group(1)], a) for a in command]


def shortened(command: list[str]) -> list[str]:
    return [SHORTENED.get(a, a) for a in command]


def documented() -> list[tuple[str, list[str]]]:
    readme = [("README", c) for c in commands_of((ROOT / "README.md").read_text())]
    helps = [(f"{name}.py --help", placeholders_filled(c)) for name in ("train", "evaluate", "export", "upscale")
             for c in help_examples(name)]
    return readme + helps


def serves(argv: list[str], cwd: Path, seconds: float = 120) -> str | None:
    """Start a server command; None once it answers HTTP on its --port (default 7860), else why not."""
    import time
    import urllib.request

    port = argv[argv.index("--port") + 1] if "--port" in argv else "7860"
    server = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answered, deadline = False, time.monotonic() + seconds
    try:
        while not answered and time.monotonic() < deadline and server.poll() is None:
            try:
                answered = urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=5).status == 200
            except OSError:
                time.sleep(0.5)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    if not answered:
        return f"no answer on port {port}; rc={server.returncode}: {output[-1500:]}"
    return None


@pytest.mark.slow
def test_every_documented_command_runs_as_written(tmp_path):
    make_inputs(tmp_path)
    failures, ran = [], 0
    for source, command in documented():
        kind, extra = rule_for(command)
        text = " ".join(command)
        if kind == "suite":
            continue  # the suite itself (CI runs `make test`)
        if kind == "serve":  # the web page: it must answer on its port; then it is stopped
            ran += 1
            problem = serves(as_run_here(command), tmp_path)
            if problem:
                failures.append(f"{source}: {text}\n  {problem}")
            continue
        if kind == "demo":  # make demo, with the demo's own steps shortened
            argv = ["make", "-C", str(ROOT), "demo", f"RUN={tmp_path / 'demo'}", f"PY={sys.executable}",
                    "STAMP=", f"DEMO_ARGS={' '.join([*TRAIN, *GAN])}"]
        else:
            if "hydra.run.dir=runs/other" in extra and any(a.startswith("hydra.run.dir=") for a in command):
                extra = [e for e in extra if e != "hydra.run.dir=runs/other"]  # its own folder, which later ones use
            argv = [*as_run_here(shortened(command)), *extra]
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        ran += 1
        lines = result.stderr.strip().splitlines()
        if kind.startswith("refuse:"):
            words = kind.split(":", 1)[1]
            if result.returncode == 0 or len(lines) != 1 or not any(w in lines[0] for w in words.split("|")):
                failures.append(f"{source}: {text}\n  should refuse in one line naming {words!r}; "
                                f"rc={result.returncode}, stderr: {result.stderr[-800:]}")
        elif result.returncode != 0:
            failures.append(f"{source}: {text}\n  rc={result.returncode}: {result.stderr[-1500:]}")
    for block in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S):  # after the export
        result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        ran += 1
        if result.returncode != 0:
            failures.append(f"README python block:\n{block}\n  rc={result.returncode}: {result.stderr[-1500:]}")
    print(f"{ran} documented commands run")
    assert not failures, "\n\n".join(failures)
    for made in ("runs/x4/checkpoints/last.ckpt", "exported/model.safetensors", "out.mp4", "runs/eval/metrics.json",
                 "multirun/scales_eval/summary.md", "photo_x4.png", "demo/clip_x4.mp4", "frame_0003.png"):
        assert (tmp_path / made).exists(), made
