"""LPIPS (Zhang et al. 2018, AlexNet variant) with a backbone that is never silently random.

The lpips wheel ships its calibrated linear layers, but the AlexNet trunk is torchvision's
ImageNet checkpoint, which is downloaded on first use. Here it is only read from disk: a
configured path or the torch hub cache. When it is missing, `load_lpips` raises
`LpipsUnavailable` with the reason, and the caller reports the metric as skipped.
"""

import warnings
from pathlib import Path

import torch
from torch import nn

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet, as lpips downloads it


class LpipsUnavailable(RuntimeError):
    """The AlexNet backbone is not on disk: LPIPS cannot be computed honestly."""


def find_alexnet(path: str | Path | None = None) -> Path:
    """The AlexNet checkpoint: `path` when given, else `torch.hub.get_dir()/checkpoints/`."""
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise LpipsUnavailable(f"metrics.lpips_backbone={path}: file not found")
        return file
    file = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not file.is_file():
        raise LpipsUnavailable(f"AlexNet backbone not found at {file} (no download here); "
                               f"set metrics.lpips_backbone=PATH/{ALEXNET_FILE}")
    return file


def load_lpips(backbone: str | Path | None = None, random_backbone: bool = False,
               device: str | torch.device = "cpu") -> nn.Module:
    """LPIPS-Alex in eval mode. `random_backbone=True` keeps a random trunk: plumbing tests only,
    the numbers it gives are not LPIPS."""
    import lpips

    with warnings.catch_warnings():  # torchvision's `pretrained=` deprecation chatter
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    if not random_backbone:
        state = torch.load(find_alexnet(backbone), map_location="cpu", weights_only=True)
        trunk = {}
        for key in model.net.state_dict():  # "slice2.3.weight" <- torchvision "features.3.weight"
            source = "features." + key.split(".", 1)[1]
            if source not in state:
                raise LpipsUnavailable(f"{backbone or ALEXNET_FILE} is not a torchvision AlexNet checkpoint "
                                       f"(no {source})")
            trunk[key] = state[source]
        model.net.load_state_dict(trunk)
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def lpips_distance(model: nn.Module, a: torch.Tensor, b: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Per-frame LPIPS between frames `(N, 3, H, W)` (float in [0, 1] or uint8) -> `(N,)` float64."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, a.shape[0], batch):
        x, y = (_unit(t[i:i + batch]).to(device) for t in (a, b))
        out.append(model(x, y, normalize=True).flatten().double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def _unit(frames: torch.Tensor) -> torch.Tensor:
    return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
