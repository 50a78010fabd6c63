"""The best checkpoint is scored with the validation that has just run, not the one before it."""

import csv

import torch

# rrdb without EMA at a high learning rate: the validation PSNR goes down and up between validations
TINY = ["model=rrdb", "model.num_feat=8", "model.num_block=1", "model.num_grow_ch=4", "loss=psnr",
        "data.batch_size=2", "data.num_workers=0", "data.train.patch_size=32", "data.train.num_frames=2",
        "data.val.num_clips=1", "data.val.patch_size=32", "data.val.num_frames=2",
        "optim.generator.lr=1e-1", "training.ema_decay=0", "trainer.enable_progress_bar=false",
        "trainer.max_steps=8", "trainer.val_check_interval=2"]


def test_best_checkpoint_has_the_best_validation_score_and_its_step(entry, tmp_path):
    result = entry("train.py", *TINY, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    [log] = tmp_path.glob("logs/version_*/metrics.csv")
    with log.open() as f:
        scores = [float(row["val/psnr_y"]) for row in csv.DictReader(f) if row.get("val/psnr_y")]
    assert len(scores) == 4 and len(set(scores)) > 1, scores  # validations at steps 2, 4, 6, 8
    best = max(scores)
    best_step = 2 * (scores.index(best) + 1)

    [path] = (tmp_path / "checkpoints").glob("best-*.ckpt")
    assert path.name == f"best-step{best_step}-psnr{best:.2f}.ckpt", (path.name, scores)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == best_step
    [state] = [s for s in ckpt["callbacks"].values() if s.get("monitor") == "val/psnr_y"]
    assert abs(float(state["best_model_score"]) - best) < 1e-4, (state["best_model_score"], scores)
    # last.ckpt is refreshed at every validation, also those that did not improve the score
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 8
