"""LightningDataModule wrapping a train and a validation clip dataset."""

import lightning as L
from torch.utils.data import DataLoader, Dataset

from vsr.data.sampler import ResumableOrder


class VSRDataModule(ResumableOrder, L.LightningDataModule):
    """Batches of clips `(B, T, C, H, W)`; validation one whole clip at a time.

    Args:
        train: training dataset (random patches); val: held-out full clips.
        batch_size, num_workers: training loader settings (validation uses batch size 1).
    """

    def __init__(self, train: Dataset, val: Dataset, batch_size: int = 4, num_workers: int = 2):
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch_size, self.num_workers = batch_size, num_workers

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, drop_last=True,
                          sampler=self.train_sampler(len(self.train_set)),
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1, shuffle=False, num_workers=0)
