"""Samplers that a resumed run continues exactly where the killed one stopped, on one process or
on every rank of a DDP run (each rank a disjoint shard of the same seeded order)."""

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


class ResumableShuffle(DistributedSampler):
    """Indices `0..size-1` in an order that depends only on `(seed, epoch)`; with `num_replicas`
    ranks, rank `r` takes every `num_replicas`-th index of that order from position `r`.

    PyTorch's default shuffle draws each epoch's order from the global RNG when the loader is
    iterated, so a run resumed mid-epoch neither sees the same order nor skips what it already
    trained on. Here the order is a pure function of seed and epoch; `resume(epoch, position)`
    makes the next pass start at `position` of this rank's shard of that epoch's order, and
    Lightning's `set_epoch(epoch)` moves to a fresh order each epoch.

    Under DDP every rank has the same shard length (the order's last `size % num_replicas`
    indices are left out that epoch, as DistributedSampler's `drop_last`), so all ranks run the
    same number of steps; the shards of one epoch are disjoint. Being a `DistributedSampler`,
    Lightning uses it as it is instead of wrapping it in one of its own.
    """

    def __init__(self, size: int, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        # not DistributedSampler.__init__: it would ask torch.distributed for what is given here
        self.size, self.seed = int(size), int(seed)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch, self.start = 0, 0
        self.num_samples = self.size // self.num_replicas

    def order(self, epoch: int) -> torch.Tensor:
        """The whole epoch's order (all ranks)."""
        # initial_seed() of an unseeded process is any 64-bit value: fold the mix into the int64 range
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        return torch.randperm(self.size, generator=generator)

    def shard(self, epoch: int) -> torch.Tensor:
        """This rank's part of the epoch's order."""
        used = self.num_samples * self.num_replicas
        return self.order(epoch)[:used][self.rank::self.num_replicas]

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.start = int(epoch), 0

    def resume(self, epoch: int, position: int) -> None:
        self.epoch, self.start = int(epoch), int(position)

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0  # the position applies to one pass only
        yield from self.shard(self.epoch)[start:].tolist()

    def __len__(self) -> int:
        return self.num_samples


class PaddedShards(Dataset):
    """Validation clips split over ranks with none repeated in the result: padded to a multiple of
    `num_replicas` so every rank runs the same number of steps (DDP needs that), and each padding
    item is marked `pad=True` so the module leaves it out of the metric sums."""

    def __init__(self, dataset: Dataset, num_replicas: int):
        self.dataset, self.real = dataset, len(dataset)
        self.total = math.ceil(self.real / num_replicas) * num_replicas

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index % self.real])
        item["pad"] = index >= self.real
        return item


class EvalShard(DistributedSampler):
    """Rank `rank`'s indices of a `PaddedShards` dataset, in order (no shuffle)."""

    def __init__(self, size: int, num_replicas: int, rank: int):
        self.size, self.num_replicas, self.rank = size, num_replicas, rank
        self.num_samples = size // num_replicas
        self.epoch, self.shuffle, self.drop_last = 0, False, False

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


def rank_and_world(trainer) -> tuple[int, int]:
    """(global rank, world size) of a Lightning trainer; (0, 1) without one."""
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


class ResumableOrder:
    """LightningDataModule mixin: `train_sampler()` gives the training loader a `ResumableShuffle`
    (this rank's shard under DDP), and the datamodule's checkpoint state records which epoch and
    sample the run had reached. The position counts samples per rank: every rank has trained on
    the same number, so the one state that rank 0 saves resumes every rank.

    Seeded from torch's seed, which train.py sets from `seed` before building the data (the same
    on every rank: the shards come from one order).
    """

    _resume_at: dict | None = None

    def train_sampler(self, size: int) -> ResumableShuffle:
        rank, world = rank_and_world(getattr(self, "trainer", None))
        sampler = ResumableShuffle(size, torch.initial_seed(), num_replicas=world, rank=rank)
        if self._resume_at:
            sampler.resume(self._resume_at["epoch"], self._resume_at["samples"])
            self._resume_at = None
        return sampler

    def state_dict(self) -> dict:
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.state.fn != "fit":
            return {}
        loop = trainer.fit_loop
        epochs = loop.epoch_progress.current
        if epochs.processed == epochs.started:
            # saved after the epoch loop ended (e.g. last.ckpt at the end of a run stopped by
            # max_steps): Lightning resumes such a run in the next epoch, so the order does too
            return {"epoch": epochs.processed, "samples": 0}
        done = loop.epoch_loop.batch_progress.current.processed  # batches trained on in this epoch
        return {"epoch": epochs.processed, "samples": done * self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        self._resume_at = state or None
