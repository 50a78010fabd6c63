"""HR -> LR degradations, applied to a whole clip `(T, C, H, W)` float in [0, 1] the same way.

- `BicubicDegradation` (BI): antialiased bicubic; `kernel="matlab"` is MATLAB's `imresize`
  (what REDS, Vimeo-90K and Vid4 LR frames were made with), `kernel="torch"` PyTorch's
  antialiased bicubic (faster on GPU; differs from MATLAB at the borders, see datasets/README.md).
- `BlurDegradation` (BD): Gaussian blur (13x13, sigma 1.6) then subsampling, the DUF/BasicVSR protocol.
- `RealisticDegradation`: random blur, resize, Gaussian/Poisson noise, JPEG and video-codec
  compression, with one set of random settings per clip (RealBasicVSR-style).

Every degradation has a `protocol` name ("BI", "BD" or None): datasets use stored LR frames
only when they were made by the same protocol. Random degradations accept `seed=`.
"""

import inspect
import io
import math

import numpy as np
import torch
from torch.nn import functional as F

from vsr import SUPPORTED_SCALES
from vsr.errors import UserError, check_choice
from vsr.io.images import to_tensor, to_uint8
from vsr.ops import gaussian_1d

BICUBIC_KERNELS = ("matlab", "torch")


def check_divisible(option: str, size: int, scale: int) -> None:
    if size % scale:
        raise UserError(f"{option}={size} is not divisible by scale={scale}; use a multiple of {scale}")


def degrade(degradation, hr: torch.Tensor, seed: int | None) -> torch.Tensor:
    """Call `degradation(hr)`, passing `seed` when the degradation is random (accepts `seed=`)."""
    try:
        takes_seed = "seed" in inspect.signature(degradation).parameters
    except (TypeError, ValueError):
        takes_seed = False
    return degradation(hr, seed=seed) if takes_seed else degradation(hr)


# ---- MATLAB imresize --------------------------------------------------------------------------
def matlab_cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def matlab_contributions(in_length: int, out_length: int, antialiasing: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based source indices `(out_length, P)` of MATLAB's `imresize` along one axis.

    Follows `contributions()` in MATLAB's imresize.m: the kernel is stretched by 1/scale when
    shrinking (antialiasing), output pixel x (1-based) maps to u = x/scale + 0.5(1 - 1/scale),
    P = ceil(width) + 2 taps from floor(u - width/2), weights normalised to sum 1, indices
    outside the image mirrored (symmetric padding), and all-zero columns dropped.
    """
    scale = out_length / in_length
    width = 4.0
    if scale < 1 and antialiasing:
        kernel = lambda x: scale * matlab_cubic(scale * x)  # noqa: E731
        width = width / scale
    else:
        kernel = matlab_cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = mirror[np.mod(indices - 1, len(mirror)).astype(np.int64)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep] - 1


def _resize_axis(x: torch.Tensor, dim: int, out_length: int) -> torch.Tensor:
    in_length = x.shape[dim]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if in_length % out_length == 0:
        # integer factor: every output pixel has the same taps, so it is a strided convolution
        # over the symmetrically padded axis (what MATLAB's mirrored indices amount to)
        step = in_length // out_length
        # the taps of output pixel 1 as in matlab_contributions, trimmed of its zero ends
        u1 = step + 0.5 * (1 - step)
        width = 4.0 * step if step > 1 else 4.0
        left1 = np.floor(u1 - width / 2)
        raw = np.arange(int(math.ceil(width)) + 2)
        kern = (matlab_cubic((u1 - left1 - raw) / step) / step) if step > 1 else matlab_cubic(u1 - left1 - raw)
        nonzero = np.flatnonzero(kern)
        offset = int(left1) - 1 + int(nonzero[0])
        kern = kern[nonzero[0]:nonzero[-1] + 1] / kern.sum()  # interior zeros kept (x3 has some)
        taps = len(kern)
        span = np.arange(offset, offset + (out_length - 1) * step + taps)
        mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
        padded = x.index_select(dim, torch.from_numpy(mirror[np.mod(span, len(mirror))]).to(x.device))
        moved = padded.movedim(dim, -1)
        lead = moved.shape[:-1]
        kernel = torch.from_numpy(kern).to(x.device, dtype).view(1, 1, -1)
        out = F.conv1d(moved.reshape(-1, 1, moved.shape[-1]).to(dtype), kernel, stride=step)
        return out.reshape(*lead, out_length).movedim(-1, dim).to(x.dtype)
    weights, indices = matlab_contributions(in_length, out_length)
    w = torch.from_numpy(weights).to(x.device, dtype)
    idx = torch.from_numpy(indices).to(x.device)
    gathered = x.index_select(dim, idx.flatten())  # (..., out*P, ...)
    shape = list(x.shape)
    shape[dim:dim + 1] = [out_length, idx.shape[1]]
    gathered = gathered.reshape(shape)
    view = [1] * gathered.ndim
    view[dim], view[dim + 1] = out_length, idx.shape[1]
    return (gathered * w.to(gathered.dtype).view(view)).sum(dim + 1)


def imresize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MATLAB-compatible bicubic `imresize` of `(..., H, W)` to `size=(h, w)`, antialiased.

    Float in, float out, no rounding (MATLAB rounds only uint8 images). Matches
    `imresize(img, [h w])` / `imresize(img, 1/scale)` for the sizes of this project.
    """
    h, w = size
    out = _resize_axis(x, x.ndim - 2, h)
    return _resize_axis(out, x.ndim - 1, w)


class BicubicDegradation:
    """BI: antialiased bicubic downsampling by `scale` (the REDS / Vimeo-90K / Vid4 BI protocol).

    Args:
        scale: downsampling factor (2, 3, 4, 8).
        kernel: "matlab" (MATLAB imresize, as the papers' LR frames) or "torch" (PyTorch's
            antialiased bicubic, which differs at the image borders).
    """

    protocol = "BI"

    def __init__(self, scale: int = 4, kernel: str = "torch"):
        check_choice("scale", scale, SUPPORTED_SCALES)
        check_choice("degradation.kernel", kernel, BICUBIC_KERNELS)
        self.scale, self.kernel = scale, kernel

    def __call__(self, hr: torch.Tensor) -> torch.Tensor:
        h, w = hr.shape[-2:]
        check_divisible("HR height", h, self.scale)
        check_divisible("HR width", w, self.scale)
        size = (h // self.scale, w // self.scale)
        if self.kernel == "matlab":
            lr = imresize(hr, size)
        else:
            lr = F.interpolate(hr, size=size, mode="bicubic", align_corners=False, antialias=True)
        return lr.clamp(0, 1)


# ---- BD: Gaussian blur + subsampling ----------------------------------------------------------
def gaussian_kernel2d(size: int, sigma: float) -> torch.Tensor:
    """Normalised isotropic Gaussian `(size, size)` (what scipy's gaussian_filter of a delta gives)."""
    g = gaussian_1d(size, sigma)
    return (g[:, None] * g[None, :]).float()


def filter_clip(clip: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of `(T, C, H, W)` with a 2-D kernel, reflect-padded (same size)."""
    t, c, h, w = clip.shape
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    x = clip.reshape(t * c, 1, h, w)
    mode = "reflect" if h > ph and w > pw else "replicate"
    x = F.pad(x, (pw, pw, ph, ph), mode=mode)
    x = F.conv2d(x, kernel.to(x)[None, None])
    return x.reshape(t, c, h, w)


class BlurDegradation:
    """BD: Gaussian blur (`kernel_size` x `kernel_size`, `sigma`) then keep every `scale`-th pixel.

    The DUF / BasicVSR BD protocol (13x13, sigma 1.6, reflect padding, the top-left pixel of each
    `scale` x `scale` block), as BasicSR's `duf_downsample` for x4.
    """

    protocol = "BD"

    def __init__(self, scale: int = 4, sigma: float = 1.6, kernel_size: int = 13):
        check_choice("scale", scale, SUPPORTED_SCALES)
        if sigma <= 0 or kernel_size < 1 or kernel_size % 2 == 0:
            raise UserError(f"degradation.sigma={sigma} must be > 0 and degradation.kernel_size={kernel_size} "
                            "a positive odd number")
        self.scale, self.kernel = scale, gaussian_kernel2d(kernel_size, sigma)

    def __call__(self, hr: torch.Tensor) -> torch.Tensor:
        h, w = hr.shape[-2:]
        check_divisible("HR height", h, self.scale)
        check_divisible("HR width", w, self.scale)
        blurred = filter_clip(hr, self.kernel)
        return blurred[..., :: self.scale, :: self.scale].clamp(0, 1).contiguous()


# ---- realistic --------------------------------------------------------------------------------
def anisotropic_gaussian(size: int, sigma_x: float, sigma_y: float, angle: float) -> torch.Tensor:
    """Normalised Gaussian kernel `(size, size)` with axes `sigma_x`, `sigma_y` rotated by `angle` (rad)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * x + sin * y, -sin * x + cos * y
    k = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).float()


def _uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(rng.uniform(lo, hi))


def jpeg_frames(clip: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode each frame of `(T, 3, H, W)` as JPEG at `quality` (OpenCV)."""
    import cv2

    frames = to_uint8(clip)
    out = []
    for frame in frames:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode a frame")
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return to_tensor(out)


# x264's CPU flags up to AVX2 (x264.h: MMX .. AVX, FMA3, BMI1/2, AVX2, CACHELINE_64). Its AVX-512 kernels
# encode the same frames differently from run to run (2026-12-07, AMD EPYC with AVX-512: 4 different
# streams in 16 encodes), which made the held-out and validation H.264 conditions vary between runs;
# without them every encode is the C reference's.
X264_UP_TO_AVX2 = sum(1 << bit for bit in (*range(10), 12, 13, 14, 15, 18))


def x264_cpu_options() -> dict[str, str]:
    """x264-params that keep libx264 deterministic here: AVX-512 off where the CPU has it (every such
    CPU has the AVX2 set), else x264's own detection."""
    return {"x264-params": f"asm={X264_UP_TO_AVX2}"} if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else {}


def codec_frames(clip: torch.Tensor, codec: str, crf: int | None = None, bitrate: int | None = None,
                 preset: str = "veryfast") -> torch.Tensor:
    """Encode `(T, 3, H, W)` as one video stream with PyAV (`codec`, `crf` or `bitrate`) and decode it back.

    `preset`: the x264/x265 speed preset (training uses veryfast; ffmpeg's default is medium).
    Odd sizes are edge-padded to even (yuv420p) and cropped back after decoding.
    """
    import av

    t, _, h, w = clip.shape
    ph, pw = max(h + h % 2, 16), max(w + w % 2, 16)
    frames = np.pad(to_uint8(clip), ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        if crf is not None:
            stream.options = {"crf": str(crf)}
        if bitrate is not None:
            stream.bit_rate = int(bitrate)
        if codec in ("libx264", "libx265"):
            stream.options = {**stream.options, "preset": preset, "threads": "1",
                              **({"x265-params": "log-level=error"} if codec == "libx265" else x264_cpu_options())}
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"video codec {codec}: decoded {len(decoded)} of {t} frames")
    return to_tensor(np.stack(decoded)[:, :h, :w])


class RealisticDegradation:
    """Random real-world degradation of a clip: blur -> resize -> noise -> JPEG -> video codec.

    One set of random settings (kernel, resize mode, noise level, JPEG quality, codec and CRF)
    is drawn per call and applied to every frame of the clip, so the clip degrades consistently
    (noise is drawn per frame at the clip's level, as real sensor noise is). Same `seed`, same
    output; without a seed, the seed comes from torch's RNG (seeded per DataLoader worker).

    Args:
        scale: output is HR / scale.
        blur_prob, blur_sigma, blur_kernel_size: probability, sigma range (per axis) and size of the
            (anisotropic, rotated) Gaussian blur.
        resize_modes: interpolation used for the downsampling, one drawn per clip.
        noise_prob, gaussian_sigma, poisson_prob, poisson_scale, gray_noise_prob: noise (sigma in
            8-bit levels; Poisson with probability `poisson_prob`, otherwise Gaussian).
        jpeg_prob, jpeg_quality: JPEG compression of each frame.
        codec_prob, codecs, crf, mpeg4_bitrate: video compression of the whole clip through PyAV
            (libx264/libx265 use a random CRF, mpeg4 a random bitrate in bits/s).
    """

    protocol = None

    def __init__(self, scale: int = 4, blur_prob: float = 0.8, blur_sigma: tuple = (0.2, 3.0),
                 blur_kernel_size: int = 21, resize_modes: tuple = ("area", "bilinear", "bicubic"),
                 noise_prob: float = 0.8, gaussian_sigma: tuple = (1.0, 25.0), poisson_prob: float = 0.4,
                 poisson_scale: tuple = (0.05, 2.5), gray_noise_prob: float = 0.4,
                 jpeg_prob: float = 0.7, jpeg_quality: tuple = (30, 95),
                 codec_prob: float = 0.7, codecs: tuple = ("libx264", "mpeg4"), crf: tuple = (18, 35),
                 mpeg4_bitrate: tuple = (1e5, 1e6)):
        check_choice("scale", scale, SUPPORTED_SCALES)
        for mode in resize_modes:
            check_choice("degradation.resize_modes", mode, ("area", "bilinear", "bicubic", "nearest"))
        for codec in codecs:
            check_choice("degradation.codecs", codec, ("libx264", "libx265", "mpeg4"))
        self.scale = scale
        self.blur = dict(prob=blur_prob, sigma=tuple(blur_sigma), size=blur_kernel_size)
        self.resize_modes = tuple(resize_modes)
        self.noise = dict(prob=noise_prob, sigma=tuple(gaussian_sigma), poisson_prob=poisson_prob,
                          poisson_scale=tuple(poisson_scale), gray_prob=gray_noise_prob)
        self.jpeg = dict(prob=jpeg_prob, quality=tuple(jpeg_quality))
        self.codec = dict(prob=codec_prob, codecs=tuple(codecs), crf=tuple(crf), bitrate=tuple(mpeg4_bitrate))

    def sample(self, rng: np.random.Generator) -> dict:
        """The clip-level settings for one call (None where a stage is off)."""
        s = {}
        s["blur"] = None
        if rng.random() < self.blur["prob"]:
            s["blur"] = (_uniform(rng, self.blur["sigma"]), _uniform(rng, self.blur["sigma"]),
                         float(rng.uniform(0, math.pi)))
        s["resize"] = self.resize_modes[int(rng.integers(len(self.resize_modes)))]
        s["noise"] = None
        if rng.random() < self.noise["prob"]:
            gray = bool(rng.random() < self.noise["gray_prob"])
            if rng.random() < self.noise["poisson_prob"]:
                s["noise"] = ("poisson", _uniform(rng, self.noise["poisson_scale"]), gray)
            else:
                s["noise"] = ("gaussian", _uniform(rng, self.noise["sigma"]) / 255, gray)
        s["jpeg"] = int(rng.integers(self.jpeg["quality"][0], self.jpeg["quality"][1] + 1)) \
            if rng.random() < self.jpeg["prob"] else None
        s["codec"] = None
        if rng.random() < self.codec["prob"]:
            codec = self.codec["codecs"][int(rng.integers(len(self.codec["codecs"])))]
            if codec == "mpeg4":
                s["codec"] = (codec, None, int(_uniform(rng, self.codec["bitrate"])))
            else:
                s["codec"] = (codec, int(rng.integers(self.codec["crf"][0], self.codec["crf"][1] + 1)), None)
        return s

    def __call__(self, hr: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        h, w = hr.shape[-2:]
        check_divisible("HR height", h, self.scale)
        check_divisible("HR width", w, self.scale)
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        rng = np.random.default_rng(seed)
        s = self.sample(rng)
        x = hr.float()
        if s["blur"] is not None:
            x = filter_clip(x, anisotropic_gaussian(self.blur["size"], *s["blur"]))
        size = (h // self.scale, w // self.scale)
        mode = s["resize"]
        kwargs = {"align_corners": False, "antialias": True} if mode in ("bilinear", "bicubic") else {}
        x = F.interpolate(x, size=size, mode=mode, **kwargs).clamp(0, 1)
        if s["noise"] is not None:
            kind, level, gray = s["noise"]
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            shape = (x.shape[0], 1, *x.shape[-2:]) if gray else x.shape
            if kind == "gaussian":
                x = x + level * torch.randn(shape, generator=gen)
            else:  # Poisson: photon counts with 10**(2..4)-ish levels, scaled as Real-ESRGAN does
                vals = 10 ** 2.5
                base = x.mean(1, keepdim=True) if gray else x
                noisy = torch.poisson(base.clamp(0, 1) * vals, generator=gen) / vals
                x = x + level * (noisy - base)
            x = x.clamp(0, 1)
        if s["jpeg"] is not None:
            x = jpeg_frames(x, s["jpeg"])
        if s["codec"] is not None:
            x = codec_frames(x, *s["codec"])
        return x.clamp(0, 1)
