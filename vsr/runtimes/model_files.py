"""Rebuild an exported model from `model.json` + `model.safetensors` (no Lightning, no Hydra)."""

import hashlib
import json
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from vsr.errors import UserError
from vsr.models.build import build_generator
from vsr.models.descriptor import describe

MODEL_JSON = "model.json"
# files export.py writes beside it, per format (vsr.runtimes.graphs)
ONNX_FILE, TORCHSCRIPT_FILE = "model.onnx", "model.pt"
NCNN_PARAM, NCNN_BIN = "model.ncnn.param", "model.ncnn.bin"
PROPAGATE_FILE, RECONSTRUCT_FILE = "model.propagate.onnx", "model.reconstruct.onnx"
# a single-frame model's network without its bicubic skip (`RRDBNet.lr_residual`): made in the runtime cache
RESIDUAL_FILE = "model.residual.onnx"
CHECK_FILE = "precision_check.json"  # bf16 against fp32 on real clips (vsr.inference.precision)
GRAPH_FILES = (ONNX_FILE, TORCHSCRIPT_FILE, PROPAGATE_FILE, RECONSTRUCT_FILE, NCNN_PARAM, NCNN_BIN)
WEIGHTS = "model.safetensors"
FORMAT_NAME = "vsrlab-export"
FORMAT_VERSION = 1
HOW_TO_EXPORT = "export one with `python export.py checkpoint=CKPT output_dir=DIR`"
EXPORT_AGAIN = "export the model again with `python export.py checkpoint=CKPT output_dir=DIR`"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_json(path: str | Path) -> tuple[Path, dict]:
    """`(export directory, parsed model.json)` for a directory or a path to its model.json."""
    path = Path(path)
    folder = path.parent if path.name == MODEL_JSON else path
    meta_file = folder / MODEL_JSON
    if not folder.exists():
        raise UserError(f"weights={path}: not found; {HOW_TO_EXPORT}")
    if folder.is_file():
        raise UserError(f"weights={path} is a file; weights= takes an export folder: convert it with "
                        f"`python export.py checkpoint={path} output_dir=DIR` (training .ckpt or ESRGAN .pth)")
    if not meta_file.is_file():
        raise UserError(f"weights={path}: no {MODEL_JSON} there (not an exported model); {HOW_TO_EXPORT}")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{meta_file}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or "architecture" not in meta:
        raise UserError(f"{meta_file}: not a vsrlab model.json (no format={FORMAT_NAME!r} / architecture)")
    check_fields(meta_file, meta)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{meta_file}: format_version {meta['format_version']} is newer than this vsrlab "
                        f"reads ({FORMAT_VERSION}); upgrade vsrlab")
    return folder, meta


# model.json's fields that readers use, and the JSON types export.py writes them with
FIELD_TYPES = {"format_version": int, "architecture": dict, "scale": int, "temporal": bool, "weights": dict,
               "formats": dict}
TYPE_NAMES = {int: "a whole number", dict: "an object", bool: "true or false"}
NULLABLE = {"scale"}  # frame interpolators have none


def check_fields(meta_file: Path, meta: dict) -> None:
    """One line naming the first field of model.json whose type is not what export.py writes."""
    for field, kind in FIELD_TYPES.items():
        value = meta.get(field)
        if field not in meta or (value is None and field in NULLABLE):
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"{meta_file}: {field} must be {TYPE_NAMES[kind]}, not {json.dumps(value)[:60]}; "
                            f"{EXPORT_AGAIN}")
    if not isinstance(meta["architecture"].get("_target_"), str):
        raise UserError(f"{meta_file}: architecture._target_ must be the generator's class name, e.g. "
                        f"\"vsr.models.RRDBNet\"; {EXPORT_AGAIN}")


def weights_file(folder: Path, meta: dict) -> Path:
    """The weights file model.json names: a plain file name in the model folder (nothing else is read)."""
    name = meta.get("weights", {}).get("file", WEIGHTS)
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise UserError(f"{folder / MODEL_JSON}: weights.file={name} must be a file name inside the model folder "
                        f"(export.py writes {WEIGHTS})")
    return folder / name


def load(path: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild the generator of an export directory. Returns `(model in eval mode, model.json dict)`, the
    dict with the model's `ModelDescriptor` under "descriptor".

    The weights' sha256 is checked against model.json when `verify`; no code is loaded from files.
    """
    from safetensors.torch import load_file

    folder, meta = read_model_json(path)
    weights = weights_file(folder, meta)
    if not weights.is_file():
        raise UserError(f"weights={path}: {weights.name} is missing; {HOW_TO_EXPORT}")
    expected = meta.get("weights", {}).get("sha256")
    if verify and expected and sha256_file(weights) != expected:
        raise UserError(f"{weights}: sha256 does not match model.json (corrupt or replaced file); export it again")
    # checked on the header and a meta-device build first: a model.json may describe any size
    check_architecture(meta, folder / MODEL_JSON, weights)
    model = build_generator(meta["architecture"])  # the meta-device build above succeeded
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        raise UserError(f"{weights} does not fit the architecture in model.json: "
                        f"{(lines[1] if len(lines) > 1 else lines[0]).strip()}") from None
    except Exception as err:  # safetensors.SafetensorError on a damaged file
        raise UserError(f"{weights}: cannot be read as safetensors ({err})") from None
    return model.eval().to(device), {**meta, "descriptor": describe(model)}


class BuildBudget(TorchFunctionMode):
    """Stops a model's construction after `limit` torch calls. On the meta device nothing is
    allocated, but an architecture of a million blocks would still create a million modules."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.calls = limit, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        if self.calls > self.limit:
            raise OverflowError("model construction over budget")
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.startswith("__") and args and getattr(args[0], "is_meta", False):
            return args[0]  # in-place init of a meta tensor: no data to change (and it imports torch._dynamo, slow to start)
        return func(*args, **(kwargs or {}))


def weights_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape from the safetensors header, without reading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), "pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as err:  # safetensors.SafetensorError on a damaged file
        raise UserError(f"{weights}: cannot be read as safetensors ({err})") from None


def check_architecture(meta: dict, meta_file: Path, weights: Path) -> None:
    """Refuse a model.json whose architecture does not match its weights file tensor for tensor, or
    whose `scale` is not the architecture's, before anything is allocated: the architecture is built
    on the meta device (shapes only), with a budget of torch calls proportional to the file's tensors
    (about 12 per tensor for vsrlab's generators)."""
    shapes = weights_shapes(weights)
    try:
        with torch.device("meta"), BuildBudget(100 * len(shapes) + 10_000):
            planned = build_generator(meta["architecture"])
    except OverflowError:
        raise UserError(f"{meta_file}: its architecture is far larger than {weights.name} "
                        f"({len(shapes)} tensors); the file does not describe these weights") from None
    except UserError as err:  # a malformed architecture (vsr.models.build), named with its file
        raise UserError(f"{meta_file}: {err}") from None
    wanted = {key: tuple(value.shape) for key, value in planned.state_dict().items()}
    if wanted != shapes:
        raise UserError(f"{weights} does not fit the architecture in model.json: {first_difference(wanted, shapes)}")
    arch_scale = getattr(planned, "scale", meta["architecture"].get("scale"))
    if meta.get("scale", arch_scale) != arch_scale:
        raise UserError(f"{meta_file}: scale {meta['scale']} disagrees with its architecture, which upscales "
                        f"x{arch_scale}; correct one of them (export the model again)")


def first_difference(wanted: dict, found: dict) -> str:
    """The first key the architecture and the file disagree on, in words."""
    for key in wanted:
        if key not in found:
            return f"missing tensor {key} {list(wanted[key])}"
        if wanted[key] != found[key]:
            return f"{key} is {list(found[key])} in the file, the architecture needs {list(wanted[key])}"
    return f"unexpected tensor {next(k for k in found if k not in wanted)}"
