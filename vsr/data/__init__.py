"""Clip datasets, degradations and the LightningDataModule.

Every dataset yields dicts: `{"lr": (T, 3, h, w), "hr": (T, 3, h*scale, w*scale), "name": str}`,
float32 RGB in [0, 1].
"""
