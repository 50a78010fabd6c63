"""`python ENTRY.py --help` (conf/hydra/help/ENTRY.yaml): examples, config groups and main options,
each option a real key of the composed config, current values shown."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import vsr.conf  # noqa: F401  (registers the options the configs compose onto)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
ENTRIES = ["train", "evaluate", "export", "upscale"]
# overrides under which every documented key exists (data.root is a key of the dataset configs only)
KEY_CONTEXT = {"train": ["data=reds"], "evaluate": ["data=video"], "export": [], "upscale": []}


def options(stem: str) -> set[str]:
    return {p.stem for p in (CONF / stem).glob("*.yaml")}


def documented_keys(text: str) -> list[str]:
    """The keys in the first column of the help's options section."""
    section = re.search(r"== (?:Main )?[Oo]ptions \(key=value\) ==\n(.*?)\n\n", text, re.S).group(1)
    keys = []
    lines = section.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    for line in lines:
        if len(line) - len(line.lstrip()) > indent:  # a description's continuation line
            continue
        first = re.split(r"\s{2,}", line.strip())[0]
        keys += [k.strip() for k in first.split(",")]
    return keys


@pytest.fixture(scope="module")
def helps():
    from conftest import run_entry

    out = {}
    for name in ENTRIES:
        result = run_entry(f"{name}.py", "--help", timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
        out[name] = result.stdout
    return out


@pytest.mark.parametrize("name", ENTRIES)
def test_help_has_examples_options_and_current_values(helps, name):
    text = helps[name]
    assert text.startswith(f"{name}.py: ")
    assert "== Examples ==" in text and f"python {name}.py " in text
    assert f"python {name}.py [overrides] --cfg job" in text  # how to see every key
    assert "(now " in text and "${" not in text  # interpolations resolved to the current values
    keys = documented_keys(text)
    assert len(keys) >= 8
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=KEY_CONTEXT[name])
    for key in keys:
        if not key.startswith("hydra."):
            assert OmegaConf.select(cfg, key, default="MISSING") != "MISSING", f"{name}.py --help lists {key}, not a key"


def test_train_help_lists_every_config_group_and_option(helps):
    text = helps["train"]
    for group in ("model", "discriminator", "loss", "data", "degradation", "trainer", "logger", "experiment"):
        line = re.search(rf"^{group}: (.*)$", text, re.M)
        assert line, f"group {group} missing from train.py --help"
        assert set(line.group(1).split(", ")) == options(group)


def test_evaluate_help_lists_its_groups(helps):
    text = helps["evaluate"]
    for group in ("data", "degradation"):
        line = re.search(rf"^\s+{group}\s+(.*)$", text, re.M).group(1)
        for option in options(group):
            assert re.search(rf"\b{option}\b", line), f"evaluate.py --help does not list {group}={option}"
    assert "model=bicubic" in text or "bicubic, lanczos, nearest" in text


def test_help_shows_the_values_a_recipe_sets(entry):
    demo = OmegaConf.load(CONF / "experiment" / "demo.yaml")
    result = entry("train.py", "experiment=demo", "--help", timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"generator steps in all (now {demo.trainer.max_steps})" in result.stdout


def test_upscale_help_4k_example_makes_4k(helps):
    """The 1080p -> 4K example once ran the x4 model at its own factor: 8K, not 4K."""
    from torch import nn

    from vsr.inference import Upscaler

    example = next(line for line in helps["upscale"].splitlines() if "output=4k.mp4" in line)
    options = dict(word.split("=", 1) for word in example.split() if "=" in word)
    upscaler = Upscaler(nn.Identity(), 4, device="cpu", fit=options.get("fit"), outscale=options.get("outscale"))
    assert upscaler.output_size(1920, 1080) == (3840, 2160)


@pytest.mark.parametrize("name", ENTRIES)
def test_the_installed_commands_help_names_the_installed_commands(name):
    """`vsrlab-upscale --help` showed `python upscale.py ...` examples: a pip-installed vsrlab has no
    upscale.py to run."""
    import subprocess
    import sys

    code = (f"import sys; sys.argv = ['/venv/bin/vsrlab-{name}', '--help']\n"
            f"from vsr.apps.{name} import cli\ncli()\n")
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"vsrlab-{name} " in shown.stdout and f"vsrlab-{name} [overrides] --cfg job" in shown.stdout
    assert "python train.py" not in shown.stdout and not any(f"python {e}.py" in shown.stdout for e in ENTRIES)
