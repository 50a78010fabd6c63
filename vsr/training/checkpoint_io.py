"""How training checkpoints reach the disk: atomically, and read back without running code.

Lightning's ModelCheckpoint and `trainer.save_checkpoint` write through the strategy's
CheckpointIO; conf/trainer/cpu.yaml installs `AtomicCheckpointIO` as that plugin.
"""

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from vsr.errors import UserError
from vsr.io.atomic import replacing, temporary_name


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """`torch.save` to a temporary sibling, fsync, then rename over `path`.

    A kill at any moment leaves either the previous `path` or the new one, never a torn file;
    only the hidden `.NAME.tmp-PID` may remain, and the next save in that folder removes it.
    """
    import torch

    target = Path(path)
    with replacing(target) as f:
        torch.save(obj, f)
    _fsync_dir(target.parent)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a process killed mid-save
        if stale != temporary_name(target):
            stale.unlink(missing_ok=True)


def load_checkpoint_safely(path: str | Path, map_location=None) -> dict:
    """`torch.load(weights_only=True)`; a file that carries code, or is not a checkpoint, is one UserError."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise UserError(f"ckpt_path={path}: file not found (training writes RUN/checkpoints/last.ckpt)")
    try:
        return torch.load(file, map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for code, RuntimeError/EOFError for damaged files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"ckpt_path={path} cannot be loaded safely (weights_only=True; "
                        f"a checkpoint never needs to run code): {first[:200]}") from None


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO that writes with `atomic_torch_save` and loads with `weights_only=True` only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_safely(path, map_location)


# the nets a checkpoint must share with the model it resumes (frozen loss backbones may be left out)
TRAINED_PREFIXES = ("generator.", "generator_ema.", "discriminator.")


def check_resumable(path: str | Path, module) -> None:
    """`ckpt_path=` must be a Lightning checkpoint written by training this same model: one line
    otherwise (Lightning's own errors are a KeyError or a page of size mismatches)."""
    checkpoint = load_checkpoint_safely(path)
    if not (isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint
            and isinstance(checkpoint.get("state_dict"), dict)):
        raise UserError(f"ckpt_path={path} is not a training checkpoint (no Lightning state to resume); to start "
                        "from other weights, export them (`python export.py checkpoint=FILE output_dir=DIR`) "
                        "and pass init_from=DIR instead")
    saved, current = checkpoint["state_dict"], module.state_dict()
    for name in sorted({*saved, *current}):
        if not name.startswith(TRAINED_PREFIXES):
            continue
        there = tuple(saved[name].shape) if hasattr(saved.get(name), "shape") else None
        here = tuple(current[name].shape) if name in current else None
        if there != here:
            raise UserError(f"ckpt_path={path} was saved by another model ({name}: "
                            f"{list(there) if there else 'absent'} there, {list(here) if here else 'absent'} here); "
                            "resume with the model= settings it was trained with")
