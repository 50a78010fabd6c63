"""Hydra sweeps through train.py: one job per scale (launched by submitit_local, as
submitit_slurm would on a cluster), an Optuna search over learning rate and loss weights with
validation PSNR-Y as the objective, and the SLURM launcher preset sized from the trainer."""

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from test_train import TINY

# no perceptual term unless searched, and no checkpoints where a test does not read them
SMALL = [*TINY, "loss.perceptual.weight=0", "trainer.max_steps=2"]
NO_CHECKPOINTS = ["callbacks.last_and_best=null", "callbacks.last_every_minutes=null"]


def last_val_psnr(job_dir) -> float:
    log = sorted(job_dir.glob("logs/version_*/metrics.csv"))[-1]
    return [float(r["val/psnr_y"]) for r in csv.DictReader(log.open()) if r.get("val/psnr_y")][-1]


@pytest.mark.slow
def test_scale_sweep_runs_one_job_per_scale_through_submitit_local(entry, tmp_path):
    sweep = tmp_path / "sweep"
    result = entry("train.py", "-m", "scale=2,8", "hydra/launcher=submitit_local", *SMALL,
                   "data.train.patch_size=64", "data.val.patch_size=64", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == [
        "0_scale2", "1_scale8", "multirun.yaml"]
    for job, scale in (("0_scale2", 2), ("1_scale8", 8)):
        ckpt = torch.load(sweep / job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert ckpt["hyper_parameters"]["generator_config"]["scale"] == scale
        assert ckpt["global_step"] == 2
    # submitit ran each job as its own process and kept its logs
    assert len(list((sweep / ".submitit").glob("*/*_log.out"))) == 2


@pytest.mark.slow
def test_optuna_search_two_trials_on_sample_data(entry, tmp_path):
    sweep = tmp_path / "sweep"
    result = entry("train.py", "hparams_search=optuna", "hydra.sweeper.n_trials=2", *TINY, *NO_CHECKPOINTS,
                   "trainer.max_steps=2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [t.name for t in trials] == ["0_scale4", "1_scale4"]
    searched = ("optim.generator.lr", "loss.pixel.weight", "loss.perceptual.weight", "loss.temporal.weight",
                "loss.adversarial.weight")
    chosen, scores = [], []
    for trial in trials:
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((trial / ".hydra" / "overrides.yaml").read_text()))
        assert set(searched) <= set(overrides)
        config = yaml.safe_load((trial / ".hydra" / "config.yaml").read_text())
        lr = config["optim"]["generator"]["lr"]
        assert lr == pytest.approx(float(overrides["optim.generator.lr"])) and 2e-5 <= lr <= 1e-3
        assert config["loss"]["temporal"]["weight"] == pytest.approx(float(overrides["loss.temporal.weight"]))
        chosen.append(lr)
        scores.append(last_val_psnr(trial))
    assert chosen[0] != chosen[1]
    assert all(math.isfinite(s) and s > 10 for s in scores)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(scores), abs=1e-4)  # the objective is val PSNR-Y
    assert results["best_params"]["optim.generator.lr"] == pytest.approx(chosen[scores.index(max(scores))])


def test_slurm_launcher_is_sized_from_the_trainer():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        config = compose("train", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm", "trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=8",
            "trainer.num_nodes=2", "hydra.launcher.partition=gpu"])
    launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 8, 8)
    assert launcher["partition"] == "gpu" and launcher["timeout_min"] > 0
    assert config.trainer.strategy.find_unused_parameters is True


@pytest.mark.parametrize("entry", ["upscale", "evaluate", "export"])
def test_slurm_launcher_resolves_for_entry_points_without_a_trainer(entry):
    """upscale.py -m ... hydra/launcher=slurm failed on a cluster with InterpolationKeyError: trainer.devices."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import vsr.conf  # noqa: F401  (registers the options the configs compose onto)

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        config = compose(entry, return_hydra_config=True, overrides=["hydra/launcher=slurm"])
    launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (1, 1, 1)


def test_slurm_launcher_without_slurm_is_one_line(tmp_path, monkeypatch):
    """Where `sbatch` is missing the launcher is refused before submitit starts (it failed with a traceback)."""
    from vsr.errors import UserError
    from vsr.overrides import check_overrides

    argv = ["train.py", "-m", "hydra/launcher=slurm", "trainer=ddp", f"hydra.sweep.dir={tmp_path}"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(UserError, match=r"hydra/launcher=slurm: this machine has no SLURM \(no `sbatch` on PATH\)"):
        check_overrides("train", argv)
    (tmp_path / "sbatch").write_text("#!/bin/sh\n")
    (tmp_path / "sbatch").chmod(0o755)
    check_overrides("train", argv)  # a login node: the sweep goes on to submitit


@pytest.mark.slow
def test_ddp_inside_a_sweep_forks_its_ranks_and_a_diverging_job_fails_alone(entry, tmp_path, monkeypatch):
    """trainer=ddp in a -m sweep: each job runs 2 ranks (forked, not a re-run of the sweep). Job 0
    has NaN losses from its first batch: it stops with its one-line reason and job 1 still trains."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent))
    sweep = tmp_path / "sweep"
    result = entry("train.py", "-m", "trainer=ddp", *SMALL, f"hydra.sweep.dir={sweep}", "training.max_bad_steps=1",
                   "+callbacks.nan._target_=faults.PoisonInputs", "+callbacks.nan.first=0,100",
                   "+callbacks.probe._target_=test_distributed.Probe",
                   "+callbacks.probe.folder=${hydra:runtime.output_dir}/probe")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count("forking the ranks") == 2
    assert output.count("this job of the sweep failed: ") == 1
    assert "training stopped at step 0: 1 steps in a row had non-finite values" in output
    assert sorted(p.name for p in sweep.iterdir()) == ["0_scale4", "1_scale4", "multirun.yaml"]
    assert not (sweep / "0_scale4" / "checkpoints" / "last.ckpt").exists()
    assert torch.load(sweep / "1_scale4" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert math.isfinite(last_val_psnr(sweep / "1_scale4"))
    for rank in (0, 1):
        first = yaml.safe_load((sweep / "1_scale4" / "probe" / f"rank{rank}.jsonl").read_text().splitlines()[0])
        assert first["world"] == 2


def test_only_divergence_ends_a_sweep_job_quietly():
    from torch.multiprocessing import ProcessRaisedException

    from vsr.training.job import diverged
    from vsr.training.module import NonFiniteLossError

    assert diverged(NonFiniteLossError("training stopped at step 3: ..."))
    forked = ProcessRaisedException("\n-- Process 0 terminated with the following error:\nTraceback ...\n"
                                    "vsr.training.module.NonFiniteLossError: training stopped at step 0", 0, 1)
    assert diverged(forked)
    assert not diverged(ProcessRaisedException("\nTraceback ...\nRuntimeError: CUDA out of memory", 0, 1))
    assert not diverged(ValueError("anything else"))
