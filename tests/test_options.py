"""The options of upscale.py, export.py and evaluate.py live once, in vsr/options.py: the YAML configs set
none of them, the code reads them by attribute with no fallback default of its own, and a value of the
wrong kind is one line from the command line and from Python."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import vsr.conf  # noqa: F401  (registers the options the configs compose onto)
from vsr.errors import UserError
from vsr.options import EvaluateOptions, ExportOptions, UpscaleOptions, options, updated

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = {"upscale": UpscaleOptions, "export": ExportOptions, "evaluate": EvaluateOptions}
READERS = ["vsr/inference", "vsr/export", "vsr/evaluation"]  # the code that reads these apps' options


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_yaml_sets_no_option_and_the_composed_defaults_are_the_dataclass(name):
    yaml = OmegaConf.load(ROOT / "conf" / f"{name}.yaml")
    assert set(yaml) <= {"defaults", "hydra"}, f"conf/{name}.yaml sets {set(yaml) - {'defaults', 'hydra'}}"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        composed = compose(name)
    schema = OmegaConf.structured(SCHEMAS[name])
    groups = {"data", "degradation", "model"} if name == "evaluate" else set()
    for key in set(schema) - groups:
        assert OmegaConf.to_container(composed)[key] == OmegaConf.to_container(schema)[key], key
    assert set(composed) == set(schema)


def test_python_callers_get_the_same_defaults_and_checks():
    cfg = options(UpscaleOptions, {"crf": 20, "input": "in.mp4"})
    assert (cfg.crf, cfg.input, cfg.preset, cfg.overlap) == (20, "in.mp4", UpscaleOptions.preset, UpscaleOptions.overlap)
    assert options(UpscaleOptions, cfg) is cfg
    moved = updated(cfg, output="out.mp4")
    assert (moved.output, moved.crf, cfg.output) == ("out.mp4", 20, None)
    with pytest.raises(UserError, match="^ouptut: no such option; did you mean output\\?$"):
        updated(cfg, ouptut="out.mp4")
    cases = {"crff": "^crff: no such option; did you mean crf\\?$", "preset": "preset=[1] must be text"}
    with pytest.raises(UserError, match=cases["crff"]):
        options(UpscaleOptions, {"crff": 1})
    with pytest.raises(UserError, match=cases["preset"].replace("[", r"\[").replace("]", r"\]")):
        options(UpscaleOptions, {"preset": [1]})
    with pytest.raises(UserError, match="^metrics.lpips_batch=many must be an integer$"):
        options(EvaluateOptions, {"metrics": {"lpips_batch": "many"}})
    assert options(EvaluateOptions, {"scale": 2}).metrics.crop_border == 2  # BasicSR: the crop is the scale


@pytest.mark.parametrize("argv, line", [
    (["evaluate.py", "scale=big"], "error: scale=big must be an integer (python evaluate.py --help lists the options)"),
    (["export.py", "opset=x"], "error: opset=x must be an integer (python export.py --help lists the options)"),
    (["upscale.py", "input=a.mp4", "shipped=[a,b]"], "error: shipped=['a', 'b'] must be text"),
])
def test_a_value_of_the_wrong_kind_is_one_line_from_the_command_line(argv, line):
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith(line), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_code_repeats_no_default_of_an_option():
    """`cfg.get("crf", 17)` beside `crf: 17` in the YAML let the two drift apart. (The data and model
    groups, `data_cfg` and `model_cfg`, are configs of any dataset or model class, read as mappings.)"""
    found = []
    for file in (p for folder in READERS for p in sorted((ROOT / folder).rglob("*.py"))):
        for node in ast.walk(ast.parse(file.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "cfg"):
                found.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
