"""trainer=ddp on CPU (gloo, 2 processes) through train.py: each rank trains on its own clips,
losses and validation metrics are reduced over ranks, rank 0 alone writes checkpoints and metric
logs, and a resumed DDP run continues the same shards from the same weights. Also the sampler's
sharding in-process, and gradient accumulation."""

import csv
import hashlib
import json
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from test_train import TINY

from vsr.data.sampler import EvalShard, PaddedShards, ResumableShuffle
from vsr.losses import PixelLoss
from vsr.models.build import build_generator
from vsr.training.module import VSRGANModule

TESTS = Path(__file__).resolve().parent
# no perceptual term: its VGG19 would make every checkpoint 80 MB and DDP broadcast it at start
SMALL = [*TINY, "loss.perceptual.weight=0", "trainer.log_every_n_steps=1", "seed=5"]


def fingerprint(module: torch.nn.Module | dict) -> str:
    state = module if isinstance(module, dict) else module.state_dict()
    digest = hashlib.sha1()
    for value in state.values():
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class Probe(L.Callback):
    """Test-only: each rank appends what it did to FOLDER/rank<R>.jsonl (clips per step, its own
    loss before the mean over ranks, its validation clips, weight fingerprints at start and end)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def _write(self, trainer, **record):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _weights(self, module) -> dict:
        return {"generator": fingerprint(module.generator), "discriminator": fingerprint(module.discriminator)}

    def on_train_start(self, trainer, pl_module):
        self._write(trainer, event="start", step=trainer.global_step, world=trainer.world_size,
                    weights=self._weights(pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._write(trainer, event="batch", step=trainer.global_step, names=list(batch["name"]),
                    loss_g=float(pl_module.local_logs["train/loss_g"]))

    def on_validation_epoch_end(self, trainer, pl_module):
        self._write(trainer, event="val", step=trainer.global_step, clips=pl_module.val_scores)

    def on_train_end(self, trainer, pl_module):
        self._write(trainer, event="end", step=trainer.global_step, weights=self._weights(pl_module))


def records(folder: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (folder / f"rank{rank}.jsonl").read_text().splitlines()]


def clip_index(name: str) -> int:
    return int(re.search(r"_(\d{4})$", name).group(1))


def logged(run: Path, version: int, key: str) -> list[float]:
    rows = csv.DictReader((run / "logs" / f"version_{version}" / "metrics.csv").open())
    return [float(r[key]) for r in rows if r.get(key)]


# ---- in-process ----------------------------------------------------------------------------------

def test_shards_are_disjoint_equal_and_resumable():
    full = ResumableShuffle(11, seed=4).order(2).tolist()
    shards = [ResumableShuffle(11, seed=4, num_replicas=3, rank=r) for r in range(3)]
    for s in shards:
        s.set_epoch(2)
    seen = [list(s) for s in shards]
    assert [len(x) for x in seen] == [3, 3, 3] == [len(s) for s in shards]  # 11 // 3, all ranks equal
    assert not set(seen[0]) & set(seen[1]) and not set(seen[1]) & set(seen[2]) and not set(seen[0]) & set(seen[2])
    assert sorted(sum(seen, [])) == sorted(full[:9])  # the epoch's order, last 11 % 3 left out
    resumed = ResumableShuffle(11, seed=4, num_replicas=3, rank=1)
    resumed.resume(2, 1)
    assert list(resumed) == seen[1][1:]  # a resumed rank continues its own shard
    assert list(ResumableShuffle(11, seed=4)) == ResumableShuffle(11, seed=4).order(0).tolist()  # 1 rank: as before


def test_validation_shards_cover_each_clip_once():
    clips = [{"name": f"c{i}"} for i in range(5)]
    padded = PaddedShards(clips, 2)
    parts = [[padded[i] for i in EvalShard(len(padded), 2, r)] for r in range(2)]
    assert [len(p) for p in parts] == [3, 3]  # same number of steps on each rank
    real = [item["name"] for p in parts for item in p if not item["pad"]]
    assert sorted(real) == [f"c{i}" for i in range(5)]  # every clip once; the one pad item is marked


class FirstGradients(L.Callback):
    """The generator's gradients as the first optimiser step sees them (after accumulation)."""

    grads: list | None = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if self.grads is None:
            self.grads = [p.grad.clone() for p in pl_module.generator.parameters()]


def first_update(batch_size: int, accumulate: int, steps: int = 2):
    torch.manual_seed(0)
    generator = build_generator({"_target_": "vsr.models.RecurrentRRDBNet", "scale": 4, "num_feat": 8,
                                 "num_block": 1, "num_block_prop": 1, "num_grow_ch": 4, "flow_levels": 2,
                                 "flow_channels": [8, 8]})
    generator.load_state_dict({k: v + 0.05 * torch.randn_like(v) for k, v in generator.state_dict().items()})
    clips = [{"lr": torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(i)),
              "hr": torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(100 + i))} for i in range(4)]
    module = VSRGANModule(generator=generator, discriminator=None, losses={"pixel": PixelLoss(1.0)}, scale=4,
                          optim={"generator": {"lr": 1e-4, "betas": [0.9, 0.99], "weight_decay": 0.0},
                                 "discriminator": {"lr": 1e-4, "betas": [0.9, 0.99], "weight_decay": 0.0},
                                 "eta_min": 1e-7, "flow_lr_mult": 0.25},
                          training={"warmup_steps": 100, "ema_decay": 0.999, "grad_clip": 0.0, "max_bad_steps": 3})
    module.accumulate_grad_batches = accumulate
    probe = FirstGradients()
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[probe])
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(clips, batch_size=batch_size))
    return probe.grads, trainer


def test_gradient_accumulation_matches_a_larger_batch():
    """trainer.accumulate_grad_batches=2 with batches of 1 makes the same generator update as batches
    of 2, and max_steps counts updates (2 updates = 4 batches)."""
    whole, whole_trainer = first_update(batch_size=2, accumulate=1)
    accumulated, trainer = first_update(batch_size=1, accumulate=2)
    single, _ = first_update(batch_size=1, accumulate=1, steps=1)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-8) for a, b in zip(accumulated, whole))
    assert not all(torch.allclose(a, b, rtol=1e-4, atol=1e-8) for a, b in zip(single, whole))
    assert trainer.global_step == whole_trainer.global_step == 2
    assert trainer.fit_loop.epoch_loop.batch_progress.total.processed == 4


def test_gpu_trainer_config_with_several_devices_gets_ddp_for_the_gan_and_accumulates():
    """trainer=gpu (bf16-mixed) with devices=2 and accumulation, built without launching anything;
    the accelerator is switched to cpu only because this machine has no GPU."""
    from hydra import compose, initialize_config_dir
    from lightning.pytorch.strategies import DDPStrategy

    from vsr.training.distributed import build_trainer

    with initialize_config_dir(config_dir=str(TESTS.parent / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["trainer=gpu", "trainer.accelerator=cpu", "trainer.devices=2",
                                          "trainer.accumulate_grad_batches=3"])
    assert cfg.trainer.precision == "bf16-mixed"

    class Module:
        accumulate_grad_batches = 1

    module = Module()
    trainer = build_trainer(cfg, module, logger=False, enable_checkpointing=False)
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.strategy._ddp_kwargs["find_unused_parameters"]
    assert trainer.num_devices == 2 and trainer.precision == "bf16-mixed"
    assert module.accumulate_grad_batches == 3
    assert trainer.val_check_interval == 3 * cfg.trainer.val_check_interval  # still counted in updates


# ---- train.py, 2 processes -----------------------------------------------------------------------

@pytest.mark.slow
def test_ddp_two_ranks_shard_reduce_rank0_checkpoint_and_resume(entry, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    run, probe = tmp_path / "run", tmp_path / "probe"
    args = [*SMALL, "trainer=ddp", "data.val.num_clips=3", f"hydra.run.dir={run}",
            "+callbacks.probe._target_=test_distributed.Probe", f"+callbacks.probe.folder={probe}"]
    # ckpt_path=last: resume from this run dir's last.ckpt when there is one (a requeued SLURM job)
    first = entry("train.py", *args, "trainer.max_steps=2", "ckpt_path=last")
    assert first.returncode == 0, first.stderr[-3000:]
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    assert ckpt["VSRDataModule"] == {"epoch": 1, "samples": 0} and ckpt["epoch"] == 1
    saved = {part: fingerprint({k: v for k, v in ckpt["state_dict"].items() if k.startswith(part + ".")})
             for part in ("generator", "discriminator")}

    # resumed with 2 batches per update: DDP's all-reduce then runs on every second backward only
    resumed = entry("train.py", *args, "trainer.max_steps=4", "ckpt_path=last", "trainer.accumulate_grad_batches=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states" in resumed.stdout + resumed.stderr
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4

    rank = {r: records(probe, r) for r in (0, 1)}
    starts = {r: [x for x in rank[r] if x["event"] == "start"] for r in (0, 1)}
    ends = {r: [x for x in rank[r] if x["event"] == "end"] for r in (0, 1)}
    assert [x["world"] for x in starts[0] + starts[1]] == [2, 2, 2, 2]

    # distributed sampler: disjoint clips, each rank's its shard of the seeded order. A run that
    # ended at max_steps counts its epoch as done (Lightning's loop state), so the resumed run
    # takes the first clips of each rank's shard of epoch 1, 4 batches for its 2 updates (a run
    # killed mid-epoch resumes at its position: test_shards_are_disjoint_equal_and_resumable)
    names = {r: [n for x in rank[r] if x["event"] == "batch" for n in x["names"]] for r in (0, 1)}
    assert len(names[0]) == len(names[1]) == 6
    assert not set(names[0]) & set(names[1])
    for r in (0, 1):
        shard = ResumableShuffle(2000, seed=5, num_replicas=2, rank=r).shard
        assert [clip_index(n) for n in names[r]] == shard(0)[:2].tolist() + shard(1)[:4].tolist()

    # gradients are averaged over ranks: both ranks hold the same generator and critic after
    # every run although they trained on different clips; the resumed run starts from last.ckpt
    for run_index in (0, 1):
        assert ends[0][run_index]["weights"] == ends[1][run_index]["weights"]
    assert starts[0][1]["weights"] == starts[1][1]["weights"] == saved == ends[0][0]["weights"]
    assert ends[0][1]["weights"]["generator"] != saved["generator"]

    # the logged training loss is the mean of the two ranks' own losses, not rank 0's
    local = {r: [x["loss_g"] for x in rank[r] if x["event"] == "batch"] for r in (0, 1)}
    logged_loss = logged(run, 0, "train/loss_g") + logged(run, 1, "train/loss_g")
    assert len(logged_loss) == 6
    for step, value in enumerate(logged_loss):
        assert value == pytest.approx((local[0][step] + local[1][step]) / 2, rel=1e-5)
        assert value != pytest.approx(local[0][step], rel=1e-4)

    # validation: 3 clips split 2 + 1 over the ranks; the logged PSNR-Y is the mean of all 3
    vals = {r: [x for x in rank[r] if x["event"] == "val"][-1]["clips"] for r in (0, 1)}
    assert (len(vals[0]), len(vals[1])) == (2, 1) and not set(vals[0]) & set(vals[1])
    scores = list(vals[0].values()) + list(vals[1].values())
    assert logged(run, 1, "val/psnr_y")[-1] == pytest.approx(sum(scores) / 3, abs=1e-4)

    # rank 0 alone writes: one last.ckpt and one best checkpoint, one metrics log per run
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name != "last.ckpt")[0].startswith("best-")
    assert len(list((run / "checkpoints").iterdir())) == 2
    assert sorted(p.name for p in (run / "logs").iterdir()) == ["version_0", "version_1"]
    assert (result_lines := (first.stdout + first.stderr).count("validation PSNR-Y")) == 1, result_lines
