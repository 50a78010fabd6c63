"""RNG state that travels with a checkpoint, so a resumed run draws the same numbers (exact resume)."""

import random

import numpy as np
import torch


def capture_rng_state() -> dict:
    """torch, python and numpy generator states; numpy's as a tensor so the checkpoint stays
    loadable with `weights_only=True`."""
    return {
        "torch": torch.get_rng_state(), "python": random.getstate(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": np.random.get_state()[2],
    }


def restore_rng_state(state: dict | None) -> None:
    """Undo `capture_rng_state` (no-op for checkpoints written without one)."""
    if not state:
        return
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate(state["python"])
