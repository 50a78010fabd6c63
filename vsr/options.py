"""The options of upscale.py, export.py and evaluate.py, each default written once, here.

Hydra composes vsr/conf/upscale.yaml (export.yaml, evaluate.yaml) onto these dataclasses (vsr/conf
registers them), and `options(Schema, mapping)` gives Python callers the same: the defaults with
their values over them. Code reads `cfg.crf`, never `cfg.get("crf", 17)`.

Fields typed `Any` take more than one kind of value (`auto` or a number; OmegaConf 2.3 has no Union)
or are checked where they are used, whose one-line message names the accepted values and range
(OmegaConf alone would read `overwrite=2` as true and say nothing of crf's range). OmegaConf is
imported by the functions only: `vsr.inference.Upscaler` uses the defaults without it.
"""

from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

from vsr.errors import UserError, nearest


@dataclass
class Windows:
    """How a clip is cut for the model: upscale.py's chunk/overlap/tile/tile_pad, evaluate.py's inference.*."""

    chunk: Any = "auto"    # output frames per model call; auto: the model's ONNX graph length (32 for the shipped model; else 20) less the context; 0 = the whole clip (evaluate)
    overlap: int = 2       # context frames on each side of a chunk (recurrent models; discarded; README.md, "Export and upscale")
    tile: Any = "auto"     # LR tile size in pixels, 0 = whole frame; auto: whole frames when they fit in memory, else the largest of 512/256/128/64 that does
    tile_pad: int = 32     # context pixels around each tile; tiles cross-fade over it (README.md, "Export and upscale")


WINDOWS = Windows()


@dataclass
class UpscaleOptions:
    """python upscale.py input=IN_VIDEO|IMAGE|FOLDER output=OUT [weights=DIR] [key=value ...]"""

    input: Optional[str] = None      # a video, an image, or a folder of them (output= then a folder: names and sub-folders kept)
    output: Optional[str] = None     # .mp4 .mov .mkv .m4v .avi: H.264 (yuv420p), same frame count, fps and audio
    weights: Optional[str] = None    # an export folder (model.json + model.safetensors); null = the shipped model of `shipped=` (vsr/weights)
    shipped: str = "default"         # shipped x4 model without weights=: default (trained for compressed video, best PSNR on it) | clean (trained on clean photographs, best on clean sources) | fast (a smaller network: several times faster, less detail) | sharp (GAN: more texture, more flicker)
    overwrite: Any = False           # true/false: replace an existing output file
    resume: Any = False              # true/false: write the video as segment files beside the output (.NAME.segments/); a killed run re-run with the same options continues after the last complete one
    segment: Any = 240               # with resume=true or engine=ray: output frames per segment file (at least; they end where the model's windows end)
    engine: str = "local"            # local | ray: files, and parts of videos of 2+ segments, as Ray tasks on RAY_ADDRESS's cluster or a local one (docs/cluster.md)
    workers: Any = "auto"            # engine=ray without RAY_ADDRESS: CPUs of the local Ray instance, one task each (auto: all)

    # Streaming: memory holds chunk + 2*overlap frames, whatever the video's length.
    chunk: Any = WINDOWS.chunk
    overlap: Any = WINDOWS.overlap
    tile: Any = WINDOWS.tile
    tile_pad: Any = WINDOWS.tile_pad

    device: str = "auto"             # auto (CUDA, MPS, CPU) | cpu | cuda | cuda:N
    runtime: str = "auto"            # auto (fastest on this device, timed at the first call) | eager | channels_last | onnxruntime | openvino | ncnn
    ensemble: Any = "auto"           # auto: as the model was measured (1 for every shipped model) | 1 = off | 2 / 4 / 8: average over flipped (and transposed) copies, 2-8x the model's work (gain: experiments/benchmarks.md)
    precision: str = "auto"          # auto (fp16 on CUDA; on a CPU with native bf16 (AVX512-BF16, AMX) bf16 for models whose stored check passed, else fp32) | fp32 | fp16 | bf16

    denoise: Any = "auto"            # auto: 0.5 for the shipped default (x2, x3, x4) and sharp, else 0 | 0..1 temporal noise reduction after upscaling: each frame averaged with its neighbours aligned by optical flow, where they agree (video only)
    sharpen: Any = "auto"            # auto: 0.5 for sharp, else 0 | unsharp-mask amount after upscaling (0 = off, 0.5 moderate)
    color_match: Any = False         # true/false: match each output frame's colour statistics to the input frame
    outscale: Any = None             # final factor (default: the model's); above it the model runs repeatedly
    scale: Any = None                # 2 | 3 | 4 | 8: same as outscale (scale=8 with a x4 model: x4, to x2, x4 = x8)
    fit: Optional[str] = None        # WIDTHxHEIGHT box to fit the output in, e.g. 3840x2160, or 4k | 2160p | 1440p | 1080p | 720p (overrides outscale)

    crf: Any = 17                    # H.264 quality: 0 lossless ... 51 smallest; 16-18 is visually lossless
    preset: str = "superfast"        # x264 speed preset: ultrafast ... veryslow (the default's trade-off: experiments/benchmarks.md)
    encoder_threads: Any = "auto"    # x264 slice threads: auto = the model's threads beside a CPU model, x264's choice beside a GPU; 0 = x264's choice

    # Frame interpolation: N output frames per input frame at N times the fps (the last frame is held
    # N times, so N*frames frames last exactly as long as the input and its audio). Scene cuts are held.
    interpolate: Any = 1             # 2 doubles the frame rate (24 -> 48 fps); 1 = off
    interpolator: Optional[str] = None   # null = the shipped learned model (experiments/interp/model) | blend | flow | repeat | DIR
    interpolate_order: str = "upscale_first"  # upscale_first (better new frames) | interpolate_first (faster): experiments/interp/README.md
    cut_threshold: Any = 0.3         # scene-cut score (0..1) above which frames are held, not interpolated

    # Images and stills: input=photo.png output=photo_x4.png (PNG/JPEG/WebP), or
    # input=clip.mp4 stills=[120,480] output=DIR: those frames as PNGs, upscaled with temporal context.
    stills: Any = None

    reader: str = "auto"             # auto (decord, PyAV fallback) | decord | pyav
    progress: Any = True             # true/false: on stderr, runtime timing, then a bar with frames/s and an ETA (a line every 30 s when not a terminal)


@dataclass
class ExportOptions:
    """python export.py checkpoint=CKPT output_dir=DIR [formats=[onnx,torchscript]]

    CKPT: a training checkpoint (RUN/checkpoints/last.ckpt; its EMA generator is exported), an export
    folder (written again with other formats; its provenance is kept), or ESRGAN / Real-ESRGAN RRDBNet weights (.pth with params_ema/params, or .safetensors) to import. A frame
    interpolator's checkpoint (model=interp) is exported the same way (formats=[] only)."""

    checkpoint: Optional[str] = None
    output_dir: Optional[str] = None
    formats: Any = field(default_factory=list)  # any of: onnx, onnx_split (recurrent: what upscale.py runs fastest), torchscript, ncnn (single-frame); each checked against eager PyTorch
    use_ema: Any = True              # true/false: export the EMA generator (false: the raw training weights)
    metrics: Optional[str] = None    # evaluate.py's metrics.json to record; default: RUN/metrics.json if present
    frames: Any = 8                  # clip length baked into ONNX/TorchScript graphs of recurrent models
    parity_tol: float = 1.0e-4       # max |exported - eager| allowed on random clips
    opset: int = 18                  # ONNX opset (single-frame models use at most 17: legacy exporter)
    overwrite: Any = False           # true/false: replace an existing export in output_dir
    ensemble: Any = False            # true/false, frame interpolators: also predict with the frames swapped and average (2x work)


@dataclass
class InterpolationScoring:
    """evaluate.py's interpolation.*: when checkpoint= holds a frame interpolator (train.py model=interp)."""

    compare: Any = field(default_factory=lambda: ["repeat", "blend", "flow"])  # baselines: frame repetition, linear blend, classical DIS flow
    cut_threshold: float = 0.3       # frames whose neighbours straddle a scene cut are not scored (listed in report.md)
    batch: int = 8                   # held-out frames per model call


@dataclass
class MetricOptions:
    """evaluate.py's metrics.*"""

    crop_border: Any = "${scale}"    # pixels dropped at each border before every metric (BasicSR convention)
    lpips: str = "auto"              # auto: AlexNet from disk, else lpips/tlp null + reason | off | random (plumbing only)
    lpips_backbone: Optional[str] = None  # path to torchvision's alexnet-owt-7be5be79.pth; null = torch hub cache
    lpips_batch: int = 8
    niqe: bool = True                # NIQE of every SR frame (no reference; frames of 194x194 or more after the crop)
    flicker: bool = True             # tof, tlp, warp_error
    flow: str = "farneback"          # flow for tof and warp_error: farneback (TecoGAN's tOF) | dis | raft (RAFT-small)
    flow_weights: Optional[str] = None  # raft: path to torchvision's raft_small_C_T_V2-01064c6d.pth; null = torch hub cache


@dataclass
class ReportOptions:
    """evaluate.py's report.*"""

    plots: bool = True               # plots/<clip>_psnr.png, _flicker.png, _strip.png (LR | bicubic | SR | GT)
    strip_size: int = 96             # HR pixels of the crop strip
    save_frames: bool = False        # also write the SR frames as PNG under RUN/frames/<clip>/


@dataclass
class EvaluateOptions:
    """python evaluate.py checkpoint=CKPT_OR_EXPORT_DIR data=video data.path=FILE scale=4 hydra.run.dir=RUN

    The main model runs through upscale.py's Upscaler with upscale.py's defaults, so the scores are
    those of the output users get (the same windows, padding, tiles, ensemble and runtime)."""

    scale: int = 4                   # one upscale factor (2, 3, 4, 8) feeds the model check, data and metrics
    checkpoint: Optional[str] = None  # RUN/checkpoints/last.ckpt (a training checkpoint) or an exported model directory
    seed: int = 0                    # data configs that synthesise clips (data=sample) use it
    use_ema: bool = True             # score the EMA generator of a training checkpoint
    compare: Any = field(default_factory=lambda: ["bicubic"])  # baselines side by side: bicubic, lanczos, nearest ([] for none)
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    runtime: str = "auto"            # CPU fp32: the fastest of eager, channels_last, onnxruntime, openvino, ncnn, timed as upscale.py does
    precision: str = "auto"          # auto (fp16 on CUDA, fp32 elsewhere) | fp32 | fp16 | bf16, as upscale.py
    ensemble: Any = "auto"           # auto: as upscale.py runs the folder's model (1 for every shipped model) | 1 = off | 2 / 4 / 8
    denoise: Any = "auto"            # auto: as upscale.py runs the folder's model (0.5 for the shipped default and sharp, else 0) | 0..1
    sharpen: Any = "auto"            # auto: as upscale.py runs the folder's model (0.5 for sharp, else 0) | unsharp-mask amount
    ground_truth: bool = True        # false: upscale each clip's frames as they are (a real video at its own size) and score only what needs no GT (NIQE, warp error)
    progress: bool = True            # on stderr: clips done with their rate and an ETA (a line every 30 s when not a terminal)
    inference: Windows = field(default_factory=Windows)  # upscale.py's chunk, overlap, tile, tile_pad
    interpolation: InterpolationScoring = field(default_factory=InterpolationScoring)
    metrics: MetricOptions = field(default_factory=MetricOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    # the config groups (conf/data, conf/degradation, conf/model), composed by Hydra
    data: Any = None
    degradation: Any = None
    model: Any = None


Schema = TypeVar("Schema")


def options(schema: type[Schema], values=None) -> Schema:
    """`values` (a mapping, or what Hydra composed) over the defaults of `schema`, as a typed config
    read by attribute; an unknown key or a value of the wrong type is a one-line UserError."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(values, DictConfig) and OmegaConf.get_type(values) is schema:
        return values  # type: ignore[return-value]  # already composed onto the schema
    base = OmegaConf.structured(schema)
    try:
        return OmegaConf.merge(base, values or {})  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise UserError(describe_error(err, keys(base))) from None


def updated(cfg: Schema, **values) -> Schema:
    """`cfg` (what `options` returned) with `values` in place of its own, checked the same way."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = OmegaConf.get_type(cfg) if isinstance(cfg, DictConfig) else type(cfg)
    try:
        merged = OmegaConf.merge(cfg, values)
    except OmegaConfBaseException as err:
        raise UserError(describe_error(err, keys(OmegaConf.structured(schema)))) from None
    return options(schema, merged)  # type: ignore[arg-type]


# the end of OmegaConf's first line for a value of the wrong type -> what the option takes
KINDS = {"Integer": "an integer", "Float": "a number", "bool": "true or false", "string": "text", "None": "a value, not null"}


def keys(cfg, prefix: str = "") -> set[str]:
    """The dotted keys of a config's options and sections."""
    from omegaconf import OmegaConf

    found = set()
    for name, value in cfg.items_ex(resolve=False):
        found.add(f"{prefix}{name}")
        if OmegaConf.is_dict(value):
            found |= keys(value, f"{prefix}{name}.")
    return found


def describe_error(err: Exception, known: set[str] | None = None) -> str:
    """OmegaConf's page about a bad key or value, as one line naming the option (and, for a key that
    is not one, the `known` keys that are nearest to it)."""
    from omegaconf.errors import ValidationError

    key = getattr(err, "full_key", None) or "?"
    if not isinstance(err, ValidationError):
        near = nearest(key, known or set())
        return f"{key}: no such option" + (f"; did you mean {' or '.join(near)}?" if near else "")
    first = str(getattr(err, "msg", err)).splitlines()[0]
    kind = next((words for marker, words in KINDS.items() if marker in first), "another kind of value")
    return f"{key}={getattr(err, 'value', None)} must be {kind}"
