"""train.py end to end through the real entry point, with tiny overrides."""

import pytest
import torch

TINY = [
    "loss=gan",  # the GAN terms too (the default, loss=psnr, builds no critic)
    "model.num_feat=8", "model.num_block=1", "model.num_grow_ch=4", "model.flow_levels=2",
    "model.flow_channels=[8,4]", "discriminator.num_feat=8",
    "data.train.patch_size=32", "data.train.num_frames=3", "data.batch_size=1", "data.num_workers=0",
    "data.val.num_clips=1", "data.val.num_frames=3", "data.val.patch_size=32",
    "trainer.val_check_interval=2", "trainer.enable_progress_bar=false",
    "loss.perceptual.pretrained=false", "loss.perceptual.layer_weights={conv1_2:1.0}",
    "training.warmup_steps=1",
]


def checkpoint_step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


@pytest.mark.slow
def test_train_writes_last_checkpoint_then_resumes(entry, tmp_path):
    run = tmp_path / "run"
    first = entry("train.py", *TINY, "trainer.max_steps=2", f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr[-3000:]
    last = run / "checkpoints" / "last.ckpt"
    assert checkpoint_step(last) == 2  # max_steps counts generator steps, the GAN stage included
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert any(k.startswith("generator_ema.module.") for k in ckpt["state_dict"])
    assert any(k.startswith("discriminator.") for k in ckpt["state_dict"])
    assert "rng_state" in ckpt and len(ckpt["optimizer_states"]) == 2

    resumed = entry("train.py", *TINY, "trainer.max_steps=4", f"hydra.run.dir={run}", f"ckpt_path={last}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states" in resumed.stdout + resumed.stderr
    assert checkpoint_step(last) == 4
    # the resumed run logged its validation at step 4, in a new log version beside the first
    logs = sorted((run / "logs").glob("version_*/metrics.csv"))
    assert len(logs) == 2 and "val/psnr_y" in logs[-1].read_text()


@pytest.mark.slow
@pytest.mark.parametrize("scale,patch", [(2, 32), (8, 64)])
def test_other_scales_train(entry, tmp_path, scale, patch):
    result = entry("train.py", *TINY, f"scale={scale}", f"data.train.patch_size={patch}",
                   f"data.val.patch_size={patch}", "trainer.max_steps=2", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["generator_config"]["scale"] == scale


@pytest.mark.slow
@pytest.mark.parametrize("overrides,message", [
    (["scale=5"], "scale=5 is not supported; choose one of: 2, 3, 4, 8"),
    (["data.train.patch_size=30"], "data.patch_size=30 is not divisible by scale=4"),
    (["data.train.num_frames=1"], "loss.temporal needs data.train.num_frames >= 2"),
    (["model=bicubic"], "model=bicubic is a fixed interpolation baseline"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path=/nonexistent/last.ckpt: file not found"),
    (["model=nosuchmodel"], "model=nosuchmodel: no model named nosuchmodel; choose one of"),
    (["data=nosuchdata"], "data=nosuchdata: no data named nosuchdata; choose one of"),
    (["model.alignment=optical"], "model.alignment=optical is not supported; choose one of: flow, none"),
    (["trainer=gpu"], "trainer.accelerator=gpu: this machine has no CUDA GPU that PyTorch can use"),
])
def test_bad_options_give_one_clear_line(entry, tmp_path, overrides, message):
    base = [o for o in TINY if not o.startswith("model.")] if overrides[0].startswith("model=") else TINY
    result = entry("train.py", *base, "trainer.max_steps=1", f"hydra.run.dir={tmp_path}", *overrides)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr  # exactly one line
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("logger,written", [("wandb", "wandb/latest-run"), ("many", "tensorboard/version_0")])
def test_other_loggers_work_offline(entry, tmp_path, logger, written):
    """wandb runs in offline mode (no network here) and TensorBoard writes event files."""
    result = entry("train.py", *TINY, "trainer.max_steps=2", f"logger={logger}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / written).exists()
    if logger == "many":
        assert list((tmp_path / written).glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_default_training_runs_offline_validates_at_its_end_and_prints_each_line_once(entry, tmp_path):
    """The README's first command with tiny sizes: the default loss needs no downloaded weights; a
    run shorter than trainer.val_check_interval still validates its last step (score, metrics.csv,
    best checkpoint); the console has one bar over the run's steps, each log line once, no
    framework tips or warnings."""
    tiny = [o for o in TINY if not o.startswith(("loss", "discriminator", "training.warmup"))
            and o != "trainer.enable_progress_bar=false"]
    result = entry("train.py", *tiny, "trainer.max_steps=3", "trainer.val_check_interval=500",
                   f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    metrics = next((tmp_path / "logs").glob("version_*/metrics.csv")).read_text()
    assert "val/psnr_y" in metrics.splitlines()[0] and metrics.count(",2,") >= 1  # logged at step index 2
    assert list((tmp_path / "checkpoints").glob("best-step3-*.ckpt"))
    assert "validation PSNR-Y" in console and "at step 3" in console
    assert console.count("`Trainer.fit` stopped") == 1
    assert "train steps" in console and "3/3" in console and "Epoch 0/-2" not in console
    for noise in ("💡", "Tip:", "LeafSpec", "Modules in", "v_num", "Warning"):
        assert noise not in console, noise


def test_resume_repeats_the_runs_overrides_and_yours_win(tmp_path):
    from vsr.errors import UserError
    from vsr.training.resume import resumed_overrides

    run = tmp_path / "run, 1"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(
        "- model.num_feat=8\n- trainer.max_steps=10\n- +callbacks.kill._target_=faults.KillAtStep\n"
        "- +callbacks.kill.step=5\n- ckpt_path=old.ckpt\n")
    with pytest.raises(UserError, match="last.ckpt not found"):
        resumed_overrides(run, [])
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    got = resumed_overrides(run, ["trainer.max_steps=20", "~callbacks.kill"])
    assert got == ["model.num_feat=8", "trainer.max_steps=20", f"hydra.run.dir='{run}'",
                   f"ckpt_path='{run}/checkpoints/last.ckpt'"]
    other = resumed_overrides(run, ["ckpt_path=other.ckpt"])
    assert "ckpt_path=other.ckpt" in other and not [o for o in other if o.endswith("last.ckpt'")]
    with pytest.raises(UserError, match="one run"):
        resumed_overrides(run, ["-m", "scale=2,4"])
    with pytest.raises(UserError, match="overrides.yaml not found"):
        resumed_overrides(tmp_path, [])
