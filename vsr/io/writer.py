"""Write RGB frames as H.264 (yuv420p) with PyAV, keeping the source's frame rate, audio and subtitles.

The file is written under a hidden partial name beside the output and renamed when complete, so an
error or Ctrl-C leaves neither the output nor a partial file behind; the output is claimed for the
whole time (`vsr.io.claim.OutputClaim`), so two runs never write it at once.
"""

from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from vsr.errors import UserError, check_choice, check_number
from vsr.io.claim import OutputClaim
from vsr.ops import BT601_LUMA, STUDIO_Y_WEIGHTS
from vsr.options import UpscaleOptions

OUTPUT_EXTENSIONS = (".mp4", ".mov", ".mkv", ".m4v", ".avi")
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


# BT.601 limited range, what swscale's rgb24 -> yuv420p uses for untagged video (and so what readers
# assume when decoding ours): rows Y, Cb, Cr of R, G, B in [0, 1], scaled to 219 / 224 levels.
KR, KG, KB = BT601_LUMA
Y_WEIGHTS = list(STUDIO_Y_WEIGHTS)
CB_WEIGHTS = [224 * -KR / (2 - 2 * KB), 224 * -KG / (2 - 2 * KB), 224 * 0.5]
CR_WEIGHTS = [224 * 0.5, 224 * -KG / (2 - 2 * KR), 224 * -KB / (2 - 2 * KR)]


def _weighted_sum(rgb: torch.Tensor, weights: list[float], offset: float) -> torch.Tensor:
    out = torch.mul(rgb[0], weights[0])
    return out.add_(rgb[1], alpha=weights[1]).add_(rgb[2], alpha=weights[2]).add_(offset)


@torch.inference_mode()  # model outputs are inference tensors: in-place only in this mode
def yuv420p(frame: torch.Tensor) -> np.ndarray:
    """Float RGB `(3, H, W)` (clamped to [0, 1] in place; H, W even) -> yuv420p planes as one uint8
    array `(3H/2, W)`: swscale's matrix and range, chroma the mean of each 2x2 block, rounded once
    from float instead of through uint8 RGB (closer after decoding; no faster than rounding to RGB
    plus swscale: experiments/benchmarks.md, "YUV from the model's float output")."""
    _, h, w = frame.shape
    rgb = frame.clamp_(0, 1)
    planes = torch.empty(h * w * 3 // 2, dtype=torch.uint8)
    # +0.5 then the cast's truncation: rounding in one pass (every value is positive)
    planes[: h * w].view(h, w).copy_(_weighted_sum(rgb, Y_WEIGHTS, 16.5))
    pairs = rgb[:, 0::2] + rgb[:, 1::2]  # rows first: contiguous, then the strided columns
    block_sums = pairs[..., 0::2] + pairs[..., 1::2]
    quarter = [weight / 4 for weight in CB_WEIGHTS], [weight / 4 for weight in CR_WEIGHTS]
    planes[h * w: h * w * 5 // 4].view(h // 2, w // 2).copy_(_weighted_sum(block_sums, quarter[0], 128.5))
    planes[h * w * 5 // 4:].view(h // 2, w // 2).copy_(_weighted_sum(block_sums, quarter[1], 128.5))
    return planes.numpy().reshape(h * 3 // 2, w)


def _clear_block_align(stream) -> None:
    """Set a copied compressed audio stream's block_align to 0 before an AVI muxer sees it.

    An AVI source records one for every audio stream (AAC: 768 bytes a channel, AC3: 3840, the
    largest frame), and the AVI muxer takes a nonzero one as a constant frame size: readers then
    time the packets by their bytes (AAC: one tick per 4-5 packets, the audio "ending" at a fifth
    of its length) instead of one frame a packet. PyAV cannot set the field, only pass it as an
    option when it opens the (decoder) context, whose parameters the muxer then takes."""
    stream.codec_context.options = {"block_align": "0"}
    stream.codec_context.open()


class StreamCopier:
    """Carries every audio and subtitle stream of `source` into `output`: packets copied when the
    output container accepts the codec; other audio is decoded and re-encoded as AAC; other
    subtitles are dropped (PyAV cannot convert them), each named with its reason in `dropped`.
    Streams are planned when made (so drops can be reported before any frame is computed) and
    added to `output` by `start()`, after the video stream. `mux_until(t)` interleaves them up to
    time `t` seconds with the video being written."""

    def __init__(self, source: Path, output):
        import av

        self.input = av.open(str(source))
        self.output = output
        self.plan = {}  # input stream -> "copy" or "aac"
        self.kept: list[tuple[str, str]] = []  # (stream type, what happens), in words that outlive the input
        self.dropped: list[str] = []
        suffix = Path(output.name).suffix
        for stream in (*self.input.streams.audio, *self.input.streams.subtitles):
            codec = stream.codec_context.name
            if codec in output.supported_codecs:
                self.plan[stream] = "copy"
                self.kept.append((stream.type, "copied"))
            elif stream.type == "audio":
                self.plan[stream] = "aac"
                self.kept.append((stream.type, f"re-encoded {codec} -> aac"))
            else:
                self.dropped.append(f"subtitle stream #{stream.index} ({codec}): {suffix} files cannot hold it "
                                    "(.mkv can)")
        self.routes = {}  # input stream index -> (output stream, copied?)
        self.packets = self.input.demux(list(self.plan)) if self.plan else iter(())
        self.pending = None
        self.done = not self.plan

    def start(self) -> None:
        """Add the planned streams to the output (after its video stream)."""
        for stream, how in self.plan.items():
            if how == "copy":
                out = self.output.add_stream_from_template(stream)
                # (PCM and ADPCM do come in blocks of block_align bytes, which the muxer must know)
                if stream.type == "audio" and self.output.format.name == "avi" and "pcm" not in stream.codec_context.name:
                    _clear_block_align(out)
                self.routes[stream.index] = (out, True)
                continue
            out = self.output.add_stream("aac", rate=stream.codec_context.sample_rate or 48000)
            # The default layout for the channel count: AAC rejects unordered ones ("1 channels" from AVI).
            out.layout = DEFAULT_LAYOUTS.get(stream.codec_context.channels, "stereo")
            self.routes[stream.index] = (out, False)

    @property
    def audio_mode(self) -> str:
        """"copied", "re-encoded pcm_u8 -> aac", "2 streams copied", ... or "none"."""
        modes = Counter(mode for kind, mode in self.kept if kind == "audio")
        return ", ".join(mode if n == 1 else f"{n} streams {mode}" for mode, n in modes.items()) or "none"

    @property
    def summary(self) -> str:
        """What happened to every stream besides the video, for the one-line summary."""
        subtitles = sum(kind == "subtitle" for kind, _ in self.kept)
        parts = [f"audio {self.audio_mode}"]
        if subtitles:
            parts.append(f"{subtitles} subtitle stream{'s' * (subtitles > 1)} copied")
        if self.dropped:
            parts.append(f"{len(self.dropped)} stream{'s' * (len(self.dropped) > 1)} dropped ({'; '.join(self.dropped)})")
        return ", ".join(parts)

    def _next(self):
        for packet in self.packets:
            if packet.dts is not None or packet.size:
                return packet
        self.done = True
        return None

    def _write(self, packet) -> None:
        out, copy = self.routes[packet.stream.index]
        if copy:
            if packet.pts is None and packet.dts is None:
                return
            if packet.dts is None:  # MKV stores no decode times; audio and subtitles are never reordered
                packet.dts = packet.pts
            packet.stream = out
            self.output.mux(packet)
        else:
            for frame in packet.decode():  # its pts carry over, so the encoder's priming is trimmed
                self.output.mux(out.encode(frame))

    def mux_until(self, seconds: float | None) -> None:
        """Mux packets whose time is before `seconds` (all remaining ones for None)."""
        while not self.done:
            packet = self.pending or self._next()
            self.pending = None
            if packet is None:
                break
            if seconds is not None and packet.pts is not None and packet.time_base is not None \
                    and float(packet.pts * packet.time_base) > seconds:
                self.pending = packet
                return
            self._write(packet)
        if seconds is None:
            for out, copy in self.routes.values():
                if not copy:
                    self.output.mux(out.encode(None))

    def close(self) -> None:
        self.input.close()


# upscale.py's: x264 on a CPU takes its time out of the model's, so a fast preset (the measurements:
# experiments/benchmarks.md); `preset=veryfast crf=16` or `preset=medium crf=18` give smaller files.
DEFAULT_CRF, DEFAULT_PRESET = UpscaleOptions.crf, UpscaleOptions.preset
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


def check_encoder_options(crf, preset) -> None:
    """x264's `crf` and `preset` as one-line errors (x264 itself refuses them only at the first frame)."""
    check_number("crf", crf, 0, 51, integer=True, hint=" (0 lossless ... 51 smallest; 16-18 is visually lossless)")
    check_choice("preset", preset, X264_PRESETS)


class VideoWriter:
    """Stream RGB frames (uint8 `(H, W, 3)` arrays or float `(3, H, W)` tensors) into an H.264 file,
    atomically.

    Args:
        path: output file; its extension picks the container (.mp4 .mov .mkv .m4v .avi).
        rate: frame rate as a fraction (kept exactly, e.g. 30000/1001).
        audio_from: a file whose audio and subtitle streams are copied (`StreamCopier`).
        crf: x264 constant rate factor (0 lossless ... 51; 16-18 is visually lossless).
        preset: x264 speed preset (ultrafast ... veryslow; slower = smaller files at the same crf).
        start: time of the first frame in seconds (the source's, so audio stays in sync).
        rotation: display rotation in degrees to record (the source's; frames are stored as given).
        times: each frame's presentation time in `time_base` ticks, for variable-frame-rate sources
            (None: frame i is at `start + i / rate`).
        time_base: the unit of `times` (the source stream's, so every time is kept exactly).
        threads: x264 threads; 0 lets x264 choose. Slice threads: they split each frame and finish
            it inside `write`, so nothing encodes in the background while the caller computes.
        claim: the `OutputClaim` its caller holds on `path` (taken before any work); without one
            the writer claims `path` itself on entry, replacing an existing file.
    Odd sizes are cropped by one pixel (yuv420p needs even width and height).
    Use as a context manager: on an exception the temporary file is removed.
    """

    def __init__(self, path: str | Path, rate: Fraction, audio_from: str | Path | None = None,
                 crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET, start: float = 0.0, rotation: int = 0,
                 threads: int = 0, claim: OutputClaim | None = None, times: list[int] | None = None,
                 time_base: Fraction | None = None):
        self.path = Path(path)
        if self.path.suffix.lower() not in OUTPUT_EXTENSIONS:
            raise UserError(f"output={path}: unsupported extension; use one of {', '.join(OUTPUT_EXTENSIONS)}")
        check_encoder_options(crf, preset)
        self.rate = Fraction(rate).limit_denominator(1_000_000)
        self.audio_from = Path(audio_from) if audio_from else None
        self.crf, self.preset, self.threads = int(crf), preset, int(threads)
        self.own_claim = claim is None
        self.claim = OutputClaim(self.path, overwrite=True) if claim is None else claim
        self.tmp = self.claim.partial
        self.container = None
        self.stream = None
        self.audio: StreamCopier | None = None
        self.frames = 0
        self.first_pts = round(start * self.rate)
        self.times = times
        self.time_base = Fraction(time_base) if times is not None else 1 / self.rate
        self.rotation = int(rotation)
        self.size: tuple[int, int] | None = None  # (width, height) written
        self.copying = False  # packets copied from segments (`copy_segment`), nothing encoded here

    @property
    def audio_mode(self) -> str:
        return self.audio.audio_mode if self.audio else "none"

    @property
    def streams_summary(self) -> str:
        """Audio and subtitle streams copied, re-encoded or dropped (with why), in words."""
        return self.audio.summary if self.audio else "audio none"

    def __enter__(self):
        import av

        if self.own_claim:
            self.claim.__enter__()
        try:
            self.container = av.open(str(self.tmp), "w")
        except (OSError, av.error.FFmpegError) as err:
            self._discard()
            self._release()
            raise UserError(f"output={self.path}: cannot write there ({getattr(err, 'strerror', None) or err})") from None
        try:
            if self.audio_from is not None:  # planned now: what is dropped is known before any frame
                self.audio = StreamCopier(self.audio_from, self.container)
        except BaseException:
            self._discard()
            self._release()
            raise
        return self

    def _open_stream(self, height: int, width: int) -> None:

        self.size = (width - width % 2, height - height % 2)
        if min(self.size) < 2:
            raise UserError(f"output frames of {width}x{height} are too small to encode")
        self.stream = self.container.add_stream("libx264", rate=self.rate)
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = self.time_base
        if self.times is not None:  # the source's unit, so the muxer keeps every time as it was
            self.stream.time_base = self.time_base
        self.stream.codec_context.thread_type = "SLICE"  # PyAV's default too; written out because the loop relies on it
        self.stream.options = {"crf": str(self.crf), "preset": self.preset,
                               **({"threads": str(self.threads)} if self.threads else {})}
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        if self.audio:
            self.audio.start()

    def write(self, frame: np.ndarray | torch.Tensor) -> None:
        """Encode one RGB frame: uint8 `(H, W, 3)`, or float `(3, H, W)` in [0, 1] (converted
        straight to yuv420p by `yuv420p`; it is clamped in place)."""
        import av

        is_float = isinstance(frame, torch.Tensor)
        if self.stream is None:
            try:
                self._open_stream(*(frame.shape[-2:] if is_float else frame.shape[:2]))
            except (av.error.FFmpegError, ValueError) as err:
                raise UserError(f"output={self.path}: cannot set up the video/audio streams "
                                f"({getattr(err, 'strerror', None) or err})") from None
        w, h = self.size
        if is_float:
            image = av.VideoFrame.from_ndarray(yuv420p(frame[:, :h, :w]), format="yuv420p")
        else:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
        image.pts = self._pts(self.frames)
        image.time_base = self.time_base
        try:
            self.container.mux(self.stream.encode(image))
            self.frames += 1
            if self.audio:
                self.audio.mux_until(float(self._pts(self.frames, last=True) * self.time_base))
        except OSError as err:  # disk full, I/O error (av.error.OSError is one)
            raise self._failed(err) from None
        except av.error.FFmpegError as err:  # a damaged audio packet
            raise UserError(f"output={self.path}: writing failed at frame {self.frames} "
                            f"({err.strerror or type(err).__name__})") from None

    def copy_segment(self, segment: Path, first: int) -> None:
        """Append the H.264 packets of `segment`, a file this class wrote (its times starting at 0,
        the same size, rate and encoder settings) holding frames `first`, `first + 1`, ... of this
        output, without re-encoding: how `resume=true` joins its segments. Its times are moved to
        where those frames belong, and the audio is interleaved as `write` does."""
        import av

        try:
            with av.open(str(segment)) as source:
                video = source.streams.video[0]
                if self.stream is None:
                    self.stream = self.container.add_stream_from_template(video)
                    self.size, self.copying = (video.width, video.height), True
                    if self.rotation:
                        self.stream.set_display_rotation(self.rotation)
                    if self.audio:
                        self.audio.start()
                base = video.time_base
                shift = None
                for packet in source.demux(video):
                    if packet.size == 0 or packet.pts is None:
                        continue
                    if shift is None:  # the segment's first packet is its first frame (an IDR frame)
                        shift = round(self._pts(first) * self.time_base / base) - packet.pts
                    packet.pts += shift
                    packet.dts = packet.dts + shift if packet.dts is not None else None
                    packet.stream = self.stream
                    self.container.mux(packet)
                    self.frames += 1
                    if self.audio:
                        self.audio.mux_until(float(self._pts(self.frames, last=True) * self.time_base))
        except OSError as err:
            raise self._failed(err) from None
        except av.error.FFmpegError as err:
            raise UserError(f"{segment}: cannot be joined ({err.strerror or type(err).__name__}); delete it to "
                            "redo its frames") from None

    def _pts(self, n: int, last: bool = False) -> int:
        """Frame `n`'s time in `time_base` ticks (`last`: the last frame's, once all are written)."""
        if self.times is None:
            return self.first_pts + n
        if n >= len(self.times) and not last:
            raise UserError(f"output={self.path}: more frames than the input has ({len(self.times)})")
        return self.times[min(n, len(self.times) - 1)]

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._finish(exc_type)
        finally:
            self._release()
        return False

    def _finish(self, exc_type) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            if self.stream is None:
                raise UserError(f"output={self.path}: no frames to write")
            if not self.copying:
                self.container.mux(self.stream.encode(None))
            if self.audio:
                self.audio.mux_until(None)
            self._close()  # writes the buffered tail and the index: a full disk often shows only here
            self.claim.publish(self.tmp)
        except OSError as err:  # av.error.OSError too: disk full, I/O error, a vanished folder
            self._discard()
            raise self._failed(err) from None
        except BaseException:
            self._discard()
            raise

    def _release(self) -> None:
        if self.own_claim:
            self.claim.release()

    def _failed(self, err: OSError) -> UserError:
        return UserError(f"output={self.path}: writing failed after {self.frames} frames "
                         f"({err.strerror or type(err).__name__}); nothing written")

    def _close(self) -> None:
        if self.audio:
            self.audio.close()
        if self.container is not None:
            self.container.close()

    def _discard(self) -> None:
        try:
            self._close()
        except Exception:  # a half-written container may fail to finalise; it is deleted anyway
            pass
        finally:
            self.container = self.audio = None  # closed once: a second close would write again
        self.tmp.unlink(missing_ok=True)
