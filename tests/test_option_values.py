"""Option values as users type them: every boolean of upscale.py takes the YAML spellings or is one
line; crf; model.json shapes; train.py ckpt_path=; paths Hydra needs quoted."""

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_upscale import exported  # noqa: F401  (the tiny x2 export, a fixture)

from vsr.errors import UserError
from vsr.inference import run
from vsr.io.synthetic import write_test_video
from vsr.options import UpscaleOptions

ROOT = Path(__file__).resolve().parents[1]
BOOLEANS = ("overwrite", "resume", "color_match", "progress")  # every true/false option of upscale.py
SPELLINGS = {True: [True, "true", "True", "yes", "on", "ON", 1, "1"],
             False: [False, "false", "no", "off", "Off", 0, "0"]}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", num_frames=3, width=16, height=12, fps=25)


def upscale(**options) -> dict:
    return run({"progress": False, **options})


def test_upscale_booleans_are_yaml_booleans(exported, clip):
    """`overwrite=no` used to replace an existing output (any non-empty text counted as true)."""
    from vsr.inference.video import make_upscaler

    for truth, spellings in SPELLINGS.items():
        for spelling in spellings:
            upscaler = make_upscaler({"weights": str(exported), "color_match": spelling})
            assert upscaler.color_match is truth, spelling
    assert {f.name for f in fields(UpscaleOptions) if isinstance(f.default, bool)} == set(BOOLEANS)


@pytest.mark.parametrize("spelling", SPELLINGS[False][1:])
def test_overwrite_no_keeps_an_existing_output(exported, clip, tmp_path, spelling):
    for suffix in (".mp4", ".png"):
        existing = tmp_path / f"existing{suffix}"
        existing.write_bytes(b"keep me")
        source = clip if suffix == ".mp4" else _image(tmp_path / "in.png")
        with pytest.raises(UserError, match="already exists; pass overwrite=true"):
            upscale(input=str(source), output=str(existing), weights=str(exported), overwrite=spelling)
        assert existing.read_bytes() == b"keep me"


@pytest.mark.parametrize("option", BOOLEANS)
@pytest.mark.parametrize("value", ["maybe", "2", 2, 0.5, None, "nope"])
def test_upscale_booleans_refuse_other_values(exported, clip, tmp_path, option, value):
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(UserError, match=f"^{option}=.* must be true or false") as err:
        upscale(input=str(clip), output=str(tmp_path / "out.mp4"), weights=str(exported), **{option: value})
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.mp4"]


def test_overwrite_yes_replaces_and_cli_overwrite_no_refuses(exported, clip, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    upscale(input=str(clip), output=str(out), weights=str(exported), overwrite="yes")
    assert out.stat().st_size > 100
    made = out.read_bytes()
    result = subprocess.run([sys.executable, "upscale.py", f"input={clip}", f"output={out}", f"weights={exported}",
                             "overwrite=no", "progress=off"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: output={out} already exists; pass overwrite=true to replace it"
    assert out.read_bytes() == made


def _image(path: Path) -> Path:
    cv2.imwrite(str(path), np.full((12, 16, 3), 120, np.uint8))
    return path


@pytest.mark.parametrize("crf", ["abc", None, 23.5, -1, 52, True])
def test_crf_is_a_whole_number_in_x264s_range(exported, clip, tmp_path, crf):
    """crf=abc and crf=null were tracebacks from the writer; crf=23.5 silently became 23."""
    with pytest.raises(UserError, match=f"^crf={crf} must be an integer between 0 and 51") as err:
        upscale(input=str(clip), output=str(tmp_path / "out.mp4"), weights=str(exported), crf=crf)
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_crf_null_from_the_command_line_is_one_line(exported, clip, tmp_path):
    result = subprocess.run([sys.executable, "upscale.py", f"input={clip}", f"output={tmp_path / 'out.mp4'}",
                             f"weights={exported}", "crf=null"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ))
    assert result.returncode == 2 and result.stderr.startswith("error: crf=None must be an integer"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


# ---- model.json: malformed shapes are one line, and nothing in it runs code or reads outside its folder ----
def malformed_model_jsons(meta: dict) -> dict:
    """name -> a model.json that is valid JSON but not what export.py writes."""
    arch = meta["architecture"]
    return {
        "a JSON list": [meta],
        "architecture a string": {**meta, "architecture": arch["_target_"]},
        "target not a string": {**meta, "architecture": {**arch, "_target_": 5}},
        "target a function": {**meta, "architecture": {**arch, "_target_": "vsr.models.rrdb.spy_function"}},
        "target a constant": {**meta, "architecture": {**arch, "_target_": "vsr.models.build.ALLOWED_PREFIX"}},
        "target not a generator class": {**meta, "architecture": {**arch, "_target_": "vsr.models.build.UserError"}},
        "unknown module": {**meta, "architecture": {**arch, "_target_": "vsr.models.nosuch.Net"}},
        "extra keyword": {**meta, "architecture": {**arch, "colour": 3}},
        "keyword of the wrong type": {**meta, "architecture": {**arch, "num_feat": "eight"}},
        "weights a string": {**meta, "weights": "model.safetensors"},
        "format_version a string": {**meta, "format_version": "1"},
        "formats a list": {**meta, "formats": ["onnx"]},
        "scale a word": {**meta, "scale": "x2"},
    }


def test_malformed_model_json_is_one_line_and_runs_nothing(exported, clip, tmp_path, monkeypatch):
    import json
    import shutil

    import vsr.models.rrdb

    calls = []
    monkeypatch.setattr(vsr.models.rrdb, "spy_function", lambda **kwargs: calls.append(kwargs), raising=False)
    meta = json.loads((exported / "model.json").read_text())
    for name, bad in malformed_model_jsons(meta).items():
        folder = tmp_path / "model"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(exported, folder)
        (folder / "model.json").write_text(json.dumps(bad))
        with pytest.raises(UserError) as err:
            upscale(input=str(clip), output=str(tmp_path / "out.mp4"), weights=str(folder))
        assert "\n" not in str(err.value), name
        assert "model.json" in str(err.value) or "model target" in str(err.value), (name, str(err.value))
        assert not (tmp_path / "out.mp4").exists()
    assert calls == []


@pytest.mark.parametrize("file", ["../outside.safetensors", "/tmp/../etc/passwd", "sub/../../outside.safetensors",
                                  ".."])
def test_weights_file_outside_the_model_folder_is_refused(exported, clip, tmp_path, file):
    """`weights.file` pointed anywhere: `../../etc/passwd` was read and hashed, and a matching file
    outside the folder was loaded."""
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(exported, folder)
    shutil.copy(exported / "model.safetensors", tmp_path / "outside.safetensors")
    meta = json.loads((folder / "model.json").read_text())
    meta["weights"]["file"] = file
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="weights.file=.* must be a file name inside the model folder") as err:
        upscale(input=str(clip), output=str(tmp_path / "out.mp4"), weights=str(folder))
    assert "\n" not in str(err.value) and not (tmp_path / "out.mp4").exists()


# ---- train.py ckpt_path=: only a training checkpoint of this model resumes ------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import run_entry
    from test_train import TINY

    run = tmp_path_factory.mktemp("run")
    result = run_entry("train.py", *TINY, "trainer.max_steps=1", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-2000:]
    return run / "checkpoints" / "last.ckpt"


def test_resume_from_a_checkpoint_that_does_not_fit_is_one_line(trained, tmp_path):
    """Lightning's errors for these were tracebacks (`KeyError: 'pytorch-lightning_version'`, or a
    page of `size mismatch for generator...`)."""
    import torch
    from conftest import run_entry
    from test_train import TINY

    esrgan = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(8, 3, 3, 3)}}, esrgan)
    plain = tmp_path / "weights.pth"
    torch.save(torch.load(trained, weights_only=True)["state_dict"], plain)
    cases = {"not a training checkpoint": ([f"ckpt_path={esrgan}"], "is not a training checkpoint"),
             "a bare state dict": ([f"ckpt_path={plain}"], "is not a training checkpoint"),
             "another architecture": ([f"ckpt_path={trained}", "model.num_feat=16"], "was saved by another model")}
    for case, (overrides, words) in cases.items():
        result = run_entry("train.py", *TINY, "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'resumed'}",
                           *overrides)
        assert result.returncode == 2, (case, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ckpt_path=") and words in lines[0], (case, lines)


# ---- paths Hydra's override grammar cannot take unquoted -----------------------------------------------
def test_help_says_how_to_pass_non_ascii_and_comma_paths_and_that_way_works(exported, clip, tmp_path):
    """`input=día.mp4` is a multi-line lexer error and `input=a,b.mp4` a sweep: every --help and the
    README say how to quote such paths, and the way upscale.py's --help shows works end to end."""
    import re
    import shutil

    for name in ("train", "evaluate", "export", "upscale"):
        footer = (ROOT / "conf" / "hydra" / "help" / f"{name}.yaml").read_text()
        assert "Paths with non-ASCII letters, commas" in footer, name
    assert "Paths with non-ASCII letters, commas" in (ROOT / "README.md").read_text()
    shown = subprocess.run([sys.executable, "upscale.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env=dict(os.environ)).stdout
    example = re.search(r"""python upscale\.py "(input='[^"]*')" "(output='[^"]*')" """, shown)
    assert example, shown
    source = tmp_path / re.fullmatch("input='(.*)'", example[1])[1]
    shutil.copy(clip, source)
    assert "í" in source.name and "," in source.name
    result = subprocess.run([sys.executable, str(ROOT / "upscale.py"), example[1], example[2], f"weights={exported}",
                             "progress=false"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / re.fullmatch("output='(.*)'", example[2])[1]).is_file()
