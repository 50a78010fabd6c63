"""Issue 30: an override whose key is in no config (`denoize=0.5`, `+denoize=0.5`) is one line naming
the nearest key, exit 2, before any work; every legitimate `+`, `++`, `~`, `hydra.*` and `-m` use
still composes."""

import pytest
import yaml

from vsr.errors import UserError
from vsr.overrides import check_overrides

# entry -> (options that would otherwise run it, writing under TMP; [(misspelt override, suggested key)])
MISSPELT = {
    "train": (["hydra.run.dir=TMP/run", "trainer.max_steps=1"],
              [("trainer.max_step=5", "trainer.max_steps"), ("+model.num_feats=8", "model.num_feat")]),
    "evaluate": (["model=bicubic", "data=sample", "hydra.run.dir=TMP/run"],
                 [("ensamble=2", "ensemble"), ("+inference.chunks=10", "inference.chunk")]),
    "export": (["checkpoint=TMP/missing.ckpt", "output_dir=TMP/out"],
               [("format=[onnx]", "formats"), ("+use_emma=false", "use_ema")]),
    "upscale": (["input=TMP/in.mp4", "output=TMP/out.mp4", "progress=false"],
                [("denoize=0.5", "denoise"), ("+denoize=0.5", "denoise")]),
}


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("name,case", [(n, i) for n in MISSPELT for i in range(2)])
def test_a_misspelt_key_is_one_line_naming_the_nearest_and_nothing_runs(entry, tmp_path, name, case):
    from vsr.io.synthetic import write_test_video

    write_test_video(tmp_path / "in.mp4", num_frames=2, width=16, height=12, audio=False)
    options, cases = MISSPELT[name]
    override, suggested = cases[case]
    result = entry(f"{name}.py", *[o.replace("TMP", str(tmp_path)) for o in options], override, timeout=120)
    assert one_error_line(result) == (f"error: {override}: no such option; did you mean {suggested}? "
                                      f"(python {name}.py --help lists the options)")
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]  # no run dir, export or video


def test_an_unknown_group_option_is_one_line_with_the_nearest_options(entry, tmp_path):
    """Hydra's own message was the group's options one per line, then its search path."""
    result = entry("train.py", "model=recurent_rrdb", f"hydra.run.dir={tmp_path / 'run'}", timeout=60)
    assert one_error_line(result) == ("error: model=recurent_rrdb: no model named recurent_rrdb; did you mean "
                                      "recurrent_rrdb? (python train.py --help lists them)")
    assert list(tmp_path.iterdir()) == []


def refused(name: str, *overrides: str) -> str:
    with pytest.raises(UserError) as err:
        check_overrides(name, [f"{name}.py", *overrides])
    return str(err.value)


def test_refusals_in_sweeps_groups_and_deletions():
    assert refused("train", "-m", "scale=2,4,8", "trainer.max_step=3").startswith(
        "trainer.max_step=3: no such option; did you mean trainer.max_steps?")
    assert "no model named recurent_rrdb; did you mean recurrent_rrdb?" in refused(
        "train", "-m", "model=rrdb,recurent_rrdb")
    assert "did you mean submitit_local?" in refused("train", "hydra/launcher=submitit_locl")
    assert "did you mean experiment?" in refused("train", "experimnt=demo")
    assert refused("upscale", "~denoize").startswith("~denoize: no such option; did you mean denoise?")
    # upscale.py has no model group: `+model=rrdb` would add an unused node
    assert refused("upscale", "+model=rrdb").startswith("+model=rrdb: no such option, nor one with a similar name")
    # a keyword the node's _target_ does not take; the suggestion may be one it does take
    assert "did you mean data.val.max_speed?" in refused("evaluate", "data=sample", "+data.val.max_sped=16")


@pytest.mark.parametrize("name,overrides", [
    ("upscale", ["denoise=0.5", "++denoize=1", "hydra.run.dir=x"]),
    ("train", ["-m", "scale=2,4,8", "hydra/launcher=submitit_local", "hydra.sweep.dir=x"]),
    # a key that only some jobs of a sweep have (model.num_block_prop: the recurrent models')
    ("train", ["-m", "model=rrdb,recurrent_rrdb", "model.num_block_prop=2"]),
    ("train", ["hparams_search=optuna", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.params.optim.generator.lr=interval(1e-5,1e-3)"]),
    ("train", ["experiment=shipped_x4", "trainer.max_time=00:00:10:00"]),  # a key the experiment adds
    # callbacks is an open section; Trainer and SampleClips take these keywords
    ("train", ["+callbacks.probe._target_=test_distributed.Probe", "+callbacks.probe.folder=x",
               "+trainer.accumulate_grad_batches=2", "~callbacks.lr_monitor", "callbacks.last_and_best=null"]),
    ("evaluate", ["data=sample", "+data.val.max_speed=16", "++data.val.photos=[a.png]", "data.val.num_frames=7"]),
    ("train", ["--help"]), ("train", ["scale=2", "--cfg", "job"]), ("export", ["--info"]),
])
def test_legitimate_overrides_pass(name, overrides):
    check_overrides(name, [f"{name}.py", *overrides])


def test_plus_additions_reach_the_config(entry, tmp_path):
    result = entry("evaluate.py", "data=sample", "+data.val.max_speed=16", "++data.val.photos=[a.png]", "~compare",
                   f"hydra.run.dir={tmp_path / 'run'}", "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load(result.stdout)
    assert config["data"]["val"]["max_speed"] == 16 and config["data"]["val"]["photos"] == ["a.png"]
    assert "compare" not in config
    result = entry("train.py", "experiment=demo", "+callbacks.probe._target_=test_distributed.Probe",
                   "+callbacks.probe.folder=x", "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load(result.stdout)["callbacks"]["probe"]["folder"] == "x"
