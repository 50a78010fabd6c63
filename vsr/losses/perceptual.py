"""Perceptual loss on VGG19 features, ImageNet weights from a local file (no downloads)."""

import logging
from pathlib import Path

import torch
from einops import rearrange
from torch import nn
from torchvision.models import vgg19

from vsr.errors import UserError

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 weights


def _vgg19_layer_names() -> list[str]:
    """Names of torchvision's vgg19().features, BasicSR style: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 1
    for per_block in (2, 2, 4, 4, 4):
        for _ in range(per_block):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
        names.append(f"pool{block}")
        block, conv = block + 1, 1
    return names


def default_vgg_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


class PerceptualLoss(nn.Module):
    """Weighted L1 distance between VGG19 features of SR and GT frames, times `weight`.

    Args:
        weight: overall weight of the term.
        layer_weights: e.g. {"conv5_4": 1.0} (Real-ESRGAN uses conv1_2..conv5_4 with 0.1,0.1,1,1,1).
        pretrained: load ImageNet weights; False builds a random backbone (plumbing only, logged).
        weights_path: local file of torchvision's VGG19 weights; default: the torch hub cache.
    """

    def __init__(self, weight: float = 1.0, layer_weights: dict | None = None, pretrained: bool = True,
                 weights_path: str | None = None):
        super().__init__()
        self.weight = weight
        self.layer_weights = dict(layer_weights or {"conv5_4": 1.0})
        names = _vgg19_layer_names()
        unknown = sorted(set(self.layer_weights) - set(names))
        if unknown:
            raise UserError(f"loss.perceptual.layer_weights: unknown VGG19 layers {unknown}; "
                            f"use names like conv1_2, relu3_4, conv5_4")
        net = vgg19(weights=None)
        self.random_backbone = not pretrained
        if pretrained:
            net.load_state_dict(self._load_weights(weights_path))
        else:
            log.warning("perceptual loss uses a RANDOMLY INITIALISED VGG19 (loss.perceptual.pretrained=false): "
                        "plumbing only, not a real perceptual loss")
        last = max(names.index(n) for n in self.layer_weights)
        layers = list(net.features)[: last + 1]
        self.features = nn.Sequential(*(nn.ReLU() if isinstance(m, nn.ReLU) else m for m in layers))
        self.names = names[: last + 1]
        self.features.requires_grad_(False).eval()
        # rebuilt from its weights file by every run: kept out of checkpoints (VSRGANModule.frozen_keys)
        self.features.frozen_backbone = True
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _load_weights(weights_path: str | None) -> dict:
        file = Path(weights_path).expanduser() if weights_path else default_vgg_path()
        if not file.is_file():
            raise UserError(f"perceptual loss needs ImageNet VGG19 weights at {file} (torchvision's {VGG19_FILE}); "
                            "copy it there or set loss.perceptual.weights_path=FILE "
                            "(loss.perceptual.pretrained=false trains with a random backbone, for plumbing only)")
        return torch.load(file, map_location="cpu", weights_only=True)

    def train(self, mode: bool = True):
        super().train(mode)
        self.features.eval()  # frozen backbone stays in eval mode
        return self

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        out = {}
        for name, layer in zip(self.names, self.features):
            x = layer(x)
            if name in self.layer_weights:
                out[name] = x
        return out

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        sr_feats = self._features(rearrange(sr, "b t c h w -> (b t) c h w"))
        with torch.no_grad():
            gt_feats = self._features(rearrange(gt, "b t c h w -> (b t) c h w"))
        loss = sum(w * (sr_feats[n] - gt_feats[n]).abs().mean() for n, w in self.layer_weights.items())
        return self.weight * loss
