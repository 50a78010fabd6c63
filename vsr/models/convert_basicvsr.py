"""Import BasicVSR / BasicVSR++ checkpoints released with BasicSR or MMagic (MMEditing) into
`vsr.models.basicvsr`.

Layouts read: BasicSR `{"params": ...}` / `{"params_ema": ...}` (`BasicVSR`, `BasicVSRPlusPlus`), and
MMagic `{"state_dict": {"generator.<key>": ...}}` (`BasicVSRNet`, `BasicVSRPlusPlusNet`; the SPyNet and
upsampling convolutions there are wrapped in `.conv` / `.upsample_conv`). Widths and depths are read from
the tensor shapes. The rules below rename both to this package's names.
"""

import re
from collections.abc import Callable

import torch

from vsr.errors import UserError
from vsr.models.convert import unwrap_state

BASICVSR = "vsr.models.basicvsr.BasicVSR"
BASICVSR_PP = "vsr.models.basicvsr.BasicVSRPlusPlus"
PREFIXES = ("generator_ema.module.", "generator_ema.", "generator.", "module.")  # EMA weights first
# (pattern, replacement), applied in order to every key
RENAMES: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"^spynet\.basic_module\.(\d+)\.basic_module\.(\d+)\.conv\.", lambda m: f"spynet.basic_module.{m[1]}.basic_module.{2 * int(m[2])}."),
    (r"^(backward|forward)_resblocks\.", r"\1_trunk."),
    (r"(\.main\.2\.\d+\.)conv1\.", r"\1body.0."),
    (r"(\.main\.2\.\d+\.)conv2\.", r"\1body.2."),
    (r"^upsample(\d)\.upsample_conv\.", r"upconv\1."),
    (r"^reconstruction\.main\.", "reconstruction_trunk.main."),
    (r"^(upconv1|upconv2|conv_hr|conv_last)\.", r"reconstruction.\1."),
]
DROPPED = ("spynet.mean", "spynet.std")  # ImageNet constants, buffers of the flow net here


def generator_state(content) -> dict[str, torch.Tensor] | None:
    """The generator's tensors of a BasicSR or MMagic file, prefixes removed; None if it is neither."""
    if not isinstance(content, dict):
        return None
    if any(isinstance(content.get(key), dict) for key in ("params_ema", "params")):
        return unwrap_state(content)  # BasicSR's layout
    state = content.get("state_dict", content)
    if not isinstance(state, dict):
        return None
    for prefix in PREFIXES:
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if picked:
            return picked
    return state


def is_basicvsr_state(state: dict) -> bool:
    return any(k.startswith("spynet.basic_module") for k in state) and (
        any(k.startswith(("backward_trunk.", "backward_resblocks.", "backbone.backward_1.")) for k in state))


def rename(state: dict) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key in DROPPED or not isinstance(value, torch.Tensor):
            continue
        for pattern, replacement in RENAMES:
            key = re.sub(pattern, replacement, key)
        out[key] = value.float()
    return out


def count_blocks(state: dict, prefix: str) -> int:
    found = {int(m[1]) for k in state if (m := re.match(re.escape(prefix) + r"\.main\.2\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def basicvsr_config(state: dict) -> dict:
    """`BasicVSR` / `BasicVSRPlusPlus` kwargs (with `_target_`) matching a renamed state dict's shapes."""
    if "backbone.backward_1.main.0.weight" in state:
        groups = state["deform_align.backward_1.conv_offset.6.weight"].shape[0] // 27
        if groups != 16:
            raise UserError(f"BasicVSR++ weights with {groups} deformable groups; this model has 16")
        return {"_target_": BASICVSR_PP, "num_feat": state["feat_extract.main.0.weight"].shape[0],
                "num_block": count_blocks(state, "backbone.backward_1"), "scale": 4}
    return {"_target_": BASICVSR, "num_feat": state["backward_trunk.main.0.weight"].shape[0],
            "num_block": count_blocks(state, "backward_trunk"), "scale": 4}


def load_basicvsr(content):
    """`(model in eval mode, config)` from a BasicSR / MMagic BasicVSR or BasicVSR++ file's content."""
    from vsr.models.build import build_generator

    state = generator_state(content)
    if state is None or not is_basicvsr_state(state):
        raise UserError("weights are not a BasicVSR / BasicVSR++ generator (no spynet and propagation keys)")
    if any(k.startswith(("backward_trunk.", "backward_resblocks.")) for k in state) and any(
            k.startswith("backward_fusion") or k.startswith("edvr") for k in state):
        raise UserError("IconVSR weights are not supported (BasicVSR and BasicVSR++ are)")
    state = rename(state)
    try:
        config = basicvsr_config(state)
    except KeyError as err:
        raise UserError(f"BasicVSR weights without {err.args[0]}: an incomplete or unknown file") from None
    model = build_generator(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        raise UserError(f"BasicVSR weights do not fit {config['_target_'].rsplit('.', 1)[1]}: "
                        f"{(lines[1] if len(lines) > 1 else lines[0]).strip()[:300]}") from None
    return model.eval(), config
