"""LightningDataModule wrapping a train and a validation clip dataset."""

import logging

import lightning as L
from torch.utils.data import DataLoader, Dataset

from vsr.data.sampler import EvalShard, PaddedShards, ResumableOrder, rank_and_world
from vsr.errors import UserError

log = logging.getLogger(__name__)


def describe(dataset: Dataset) -> str:
    """'N items from Type clips a, b, ...'; each part of a ConcatDataset (data=photos_and_videos) in turn."""
    if hasattr(dataset, "datasets"):
        return " + ".join(describe(part) for part in dataset.datasets)
    names = [c.name for c in getattr(dataset, "clips", [])] or list(getattr(dataset, "names", []))
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"{len(dataset)} items from {type(dataset).__name__}" + (f" clips {shown}" if names else "")


class PositionedLoader(DataLoader):
    """The training loader. Its place in the data order is saved and restored by the datamodule
    (`ResumableOrder`), which knows the step; these two methods tell Lightning that the loader
    resumes mid-epoch, so it no longer warns at every resume that it cannot."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class VSRDataModule(ResumableOrder, L.LightningDataModule):
    """Batches of clips `(B, T, C, H, W)`; validation one whole clip at a time.

    Under DDP (`trainer=ddp`) each rank trains on its own shard of the seeded order and validates
    its own share of the validation clips (see vsr/data/sampler.py).

    Args:
        train: training dataset (random patches); val: held-out full clips.
        batch_size, num_workers: training loader settings (validation uses batch size 1).
        **shared: the data options the two datasets interpolate (`data.root`, `data.on_error`,
            `data.path`, ...); kept here so they are set once, at `data.<name>`.
    """

    def __init__(self, train: Dataset, val: Dataset, batch_size: int = 4, num_workers: int = 2, **shared):
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shared = shared
        if hasattr(train, "__len__") and len(train) < batch_size:
            raise UserError(f"data: {len(train)} training items but data.batch_size={batch_size}; lower "
                            "data.batch_size or add clips (data.train.repeat repeats each clip per epoch)")
        for split, dataset in (("train", train), ("val", val)):
            log.info("data %s: %s", split, describe(dataset))

    def train_dataloader(self) -> DataLoader:
        sampler = self.train_sampler(len(self.train_set))
        if len(sampler) < self.batch_size:  # only possible under DDP: the check in __init__ covers one rank
            raise UserError(f"data: {len(self.train_set)} training items over {sampler.num_replicas} ranks leave "
                            f"{len(sampler)} per rank, fewer than data.batch_size={self.batch_size}; lower "
                            "data.batch_size or add clips (data.train.repeat repeats each clip per epoch)")
        return PositionedLoader(self.train_set, batch_size=self.batch_size, drop_last=True, sampler=sampler,
                                num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        rank, world = rank_and_world(self.trainer)
        if world == 1:
            return DataLoader(self.val_set, batch_size=1, shuffle=False, num_workers=0)
        # DDP: each rank validates its own clips; the module sums the scores over ranks
        padded = PaddedShards(self.val_set, world)
        return DataLoader(padded, batch_size=1, sampler=EvalShard(len(padded), world, rank), num_workers=0)
