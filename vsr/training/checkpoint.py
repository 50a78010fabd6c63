"""Start training from trained weights (`init_from=`)."""

import logging
from pathlib import Path

from torch import nn

from vsr.errors import UserError
from vsr.runtimes.checkpoints import generator_state, read_checkpoint

log = logging.getLogger(__name__)

def init_generator(generator: nn.Module, path: str | Path, partial: bool = False) -> None:
    """Start training from trained weights (fine-tuning; BasicSR's `pretrain_network_g`): the EMA
    generator of a training checkpoint, or an export folder (model.json + model.safetensors).

    `partial`: load only the tensors whose name and shape fit (a x4 model's flow, propagation and
    trunk for a x2 or x3 model of the same widths); the rest keep their fresh initialisation."""
    source = Path(path)
    if source.is_dir():
        from vsr.runtimes.model_files import load

        state = load(source)[0].state_dict()
    else:
        state = generator_state(read_checkpoint(source))
    if partial:
        own = generator.state_dict()
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fitting:
            raise UserError(f"init_from={path}: no tensor fits this model= config (init_partial=true needs the "
                            "same widths)")
        generator.load_state_dict(fitting, strict=False)
        fresh = sorted(set(own) - set(fitting))
        log.info("init_from=%s: %d of %d tensors loaded; fresh: %s", path, len(fitting), len(own),
                 ", ".join(fresh) or "none")
        return
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"init_from={path} does not fit this model= config ({str(err).splitlines()[0]}); "
                        "use the same model settings it was trained with") from None
