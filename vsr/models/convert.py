"""Import ESRGAN / Real-ESRGAN `RRDBNet` weights into `RRDBNet(upsampler="nearest_conv", global_skip=False)`.

Two layouts users already have on disk are read:
- BasicSR / Real-ESRGAN (`RealESRGAN_x4plus.pth`, `ESRGAN_SRx4_DF2KOST_official.pth`):
  `{"params_ema": {...}}` or `{"params": {...}}` (or the bare dict) with keys `conv_first`,
  `body.N.rdbK.convJ`, `conv_body`, `conv_up1`, `conv_up2`[, `conv_up3`], `conv_hr`, `conv_last`.
- The original ESRGAN repository (`RRDB_ESRGAN_x4.pth`): `model.0`, `model.1.sub.N.RDBK.convJ.0`,
  `model.1.sub.<num_block>` (trunk conv), then the upsampling convs, `conv_hr` and `conv_last`
  as `model.<index>`.

The architecture (scale, width, depth, growth channels) is read from the tensor shapes.
"""

import re

import torch

from vsr.errors import UserError

TARGET = "vsr.models.RRDBNet"
_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def unwrap_state(obj) -> dict[str, torch.Tensor]:
    """The weights dict inside a BasicSR file (`params_ema` preferred over `params`) or a bare one."""
    if not isinstance(obj, dict):
        raise UserError("weights file does not hold a state dict")
    for key in ("params_ema", "params"):
        if isinstance(obj.get(key), dict):
            return obj[key]
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise UserError("weights file has neither params_ema, params nor a plain tensor dict")


def is_esrgan_state(state: dict) -> bool:
    """True for a BasicSR or original-ESRGAN RRDBNet state dict."""
    return "conv_first.weight" in state or "model.0.weight" in state


def _from_original_esrgan(state: dict) -> dict[str, torch.Tensor]:
    """Rename original ESRGAN keys (`model.N...`) to BasicSR ones."""
    out: dict[str, torch.Tensor] = {}
    top: dict[int, dict[str, torch.Tensor]] = {}  # index -> weight, bias
    blocks = {int(m.group(1)) for k in state if (m := _OLD_RDB.match(k))}
    num_block = max(blocks) + 1 if blocks else 0
    for key, value in state.items():
        if m := _OLD_RDB.match(key):
            n, rdb, conv, kind = m.groups()
            out[f"body.{n}.rdb{rdb}.conv{conv}.{kind}"] = value
        elif key.startswith(f"model.1.sub.{num_block}."):
            out[f"conv_body.{key.rsplit('.', 1)[1]}"] = value
        elif m := _OLD_TOP.match(key):
            top.setdefault(int(m.group(1)), {})[m.group(2)] = value
        else:
            raise UserError(f"unexpected key {key!r} in an original-ESRGAN weights file")
    indices = sorted(top)
    if len(indices) < 4 or indices[0] != 0:
        raise UserError("original-ESRGAN weights file is missing its first or upsampling convolutions")
    ups, (hr, last) = indices[1:-2], indices[-2:]
    names = {0: "conv_first", hr: "conv_hr", last: "conv_last"}
    names.update({idx: f"conv_up{i}" for i, idx in enumerate(ups, start=1)})
    for idx, params in top.items():
        for kind, value in params.items():
            out[f"{names[idx]}.{kind}"] = value
    return out


def esrgan_config(state: dict) -> dict:
    """`RRDBNet` kwargs (with `_target_`) that match a BasicSR-layout state dict's shapes."""
    num_in = state["conv_first.weight"].shape[1]
    num_feat = state["conv_first.weight"].shape[0]
    num_grow_ch = state["body.0.rdb1.conv1.weight"].shape[0]
    num_block = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    num_up = sum(1 for k in state if re.fullmatch(r"conv_up\d+\.weight", k))
    unshuffle = {3: 1, 12: 2, 48: 4}.get(num_in)
    if unshuffle is None or unshuffle == 4:
        raise UserError(f"RRDBNet weights with {num_in} input channels (x1 Real-ESRGAN?) are not supported; "
                        "supported: x2, x4, x8 RGB models")
    scale = 2**num_up // unshuffle
    return {"_target_": TARGET, "scale": scale, "num_feat": num_feat, "num_block": num_block,
            "num_grow_ch": num_grow_ch, "upsampler": "nearest_conv", "global_skip": False}


def rename_basicsr_keys(state: dict) -> dict[str, torch.Tensor]:
    """BasicSR `RRDBNet` names -> our `RRDBNet` names (trunk and upsampler are sub-modules here)."""
    out = {}
    for key, value in state.items():
        if key.startswith(("body.", "conv_body.")):
            out[f"trunk.{key}"] = value
        elif key.startswith(("conv_up", "conv_hr.", "conv_last.")):
            out[f"upsampler.{key}"] = value
        elif key.startswith("conv_first."):
            out[key] = value
        else:
            raise UserError(f"unexpected key {key!r} in a Real-ESRGAN RRDBNet weights file")
    return out


def convert_esrgan(obj) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return `(generator_config, state_dict)` for our `RRDBNet` from an ESRGAN / Real-ESRGAN file's content."""
    state = unwrap_state(obj)
    if not is_esrgan_state(state):
        raise UserError("weights are not an ESRGAN / Real-ESRGAN RRDBNet (no conv_first / model.0 key)")
    if "model.0.weight" in state:
        state = _from_original_esrgan(state)
    state = {k: v.float() for k, v in state.items()}
    return esrgan_config(state), rename_basicsr_keys(state)


def load_esrgan(obj):
    """Build our `RRDBNet` from ESRGAN / Real-ESRGAN weights. Returns `(model in eval mode, config)`."""
    from vsr.models.build import build_generator

    config, state = convert_esrgan(obj)
    model = build_generator(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise UserError(f"ESRGAN weights do not fit RRDBNet({config}): {detail}") from None
    return model.eval(), config
