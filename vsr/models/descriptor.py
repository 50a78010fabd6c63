"""What a generator is, declared by its class (`descriptor()`) instead of guessed from its class name or
attributes; `load` returns it and export.py writes it into model.json."""

from dataclasses import dataclass

from torch import nn

TASKS = ("super-resolution", "interpolation")


@dataclass(frozen=True)
class ModelDescriptor:
    """task: "super-resolution" or "interpolation" (a frame interpolator: two frames and a time in).
    scale: the upscale factor (None for an interpolator).
    temporal: looks at neighbouring frames, so a clip needs context frames around each window.
    size_multiple: LR height and width must be multiples of this (inputs are padded to it).
    partial_reconstruction: `kept_states` / `reconstruct`: context frames are propagated through
        but not reconstructed, and reconstruction can run tile by tile."""

    task: str = "super-resolution"
    scale: int | None = None
    temporal: bool = True
    size_multiple: int = 1
    partial_reconstruction: bool = False

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")


def describe(model: nn.Module) -> ModelDescriptor:
    """`model.descriptor()`; a module without one (a user's own) counts as a temporal upscaler of its `scale`."""
    own = getattr(model, "descriptor", None)
    if callable(own):
        return own()
    scale = getattr(model, "scale", None)
    return ModelDescriptor(scale=int(scale) if scale is not None else None)
