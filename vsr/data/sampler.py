"""A shuffling sampler that a resumed run continues exactly where the killed one stopped."""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableShuffle(Sampler[int]):
    """Indices `0..size-1` in an order that depends only on `(seed, epoch)`.

    PyTorch's default shuffle draws each epoch's order from the global RNG when the loader is
    iterated, so a run resumed mid-epoch neither sees the same order nor skips what it already
    trained on. Here the order is a pure function of seed and epoch; `resume(epoch, position)`
    makes the next pass start at `position` of that epoch's order, and Lightning's
    `set_epoch(epoch)` moves to a fresh order each epoch.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed = int(size), int(seed)
        self.epoch, self.start = 0, 0

    def order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=generator)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.start = int(epoch), 0

    def resume(self, epoch: int, position: int) -> None:
        self.epoch, self.start = int(epoch), int(position)

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0  # the position applies to one pass only
        yield from self.order(self.epoch)[start:].tolist()

    def __len__(self) -> int:
        return self.size


class ResumableOrder:
    """LightningDataModule mixin: `train_sampler()` gives the training loader a `ResumableShuffle`,
    and the datamodule's checkpoint state records which epoch and sample the run had reached.

    Seeded from torch's seed, which train.py sets from `seed` before building the data.
    """

    _resume_at: dict | None = None

    def train_sampler(self, size: int) -> ResumableShuffle:
        sampler = ResumableShuffle(size, torch.initial_seed())
        if self._resume_at:
            sampler.resume(self._resume_at["epoch"], self._resume_at["samples"])
            self._resume_at = None
        return sampler

    def state_dict(self) -> dict:
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.state.fn != "fit":
            return {}
        loop = trainer.fit_loop
        done = loop.epoch_loop.batch_progress.current.processed  # batches trained on in this epoch
        return {"epoch": loop.epoch_progress.current.processed, "samples": done * self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        self._resume_at = state or None
