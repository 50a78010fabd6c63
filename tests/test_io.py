"""Video I/O: streaming readers agree, the writer keeps frame count, rate and audio, atomically."""

import os
from fractions import Fraction

import av
import numpy as np
import pytest

from vsr.errors import UserError
from vsr.io.synthetic import moving_pattern, write_test_video
from vsr.io.video import count_checked, probe, stream_frames
from vsr.io.writer import VideoWriter


def audio_seconds(path) -> tuple[float, int]:
    """Decoded audio duration in seconds and the sample rate of the first audio stream."""
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].sample_rate
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return samples / rate, rate


def copy_through(src, dst, transform=lambda f: f, **kwargs) -> VideoWriter:
    info = probe(src)
    with VideoWriter(dst, info.rate, audio_from=src if info.has_audio else None, start=info.start,
                     rotation=info.rotation, **kwargs) as writer:
        for frame in count_checked(stream_frames(src), info.num_frames, src):
            writer.write(transform(frame))
    return writer


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("io") / "clip.mp4", num_frames=12, width=64, height=48)


def test_decord_and_pyav_read_the_same_frames(clip):
    decord_frames = np.stack(list(stream_frames(clip, "decord")))
    pyav_frames = np.stack(list(stream_frames(clip, "pyav")))
    assert decord_frames.shape == pyav_frames.shape == (12, 48, 64, 3)
    assert np.abs(decord_frames.astype(int) - pyav_frames).max() <= 2  # same decoder, maybe other rounding


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_writer_keeps_frames_rate_and_audio(clip, tmp_path, ext):
    out = tmp_path / f"out{ext}"
    writer = copy_through(clip, out, lambda f: np.repeat(np.repeat(f, 2, 0), 2, 1))
    info = probe(out)
    assert (info.num_frames, info.width, info.height, info.rate) == (12, 128, 96, Fraction(25))
    assert writer.audio_mode == "copied"
    seconds_in, rate = audio_seconds(clip)
    seconds_out, _ = audio_seconds(out)
    assert abs(seconds_out - seconds_in) <= 1024 / rate + 1e-9  # one AAC frame (MKV keeps the priming)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def stream_ends(path) -> dict[str, float]:
    """Where PyAV places the end of each stream type: its last packet's pts + duration, in seconds."""
    ends = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                end = float((packet.pts + packet.duration) * packet.time_base)
                ends[packet.stream.type] = max(ends.get(packet.stream.type, 0.0), end)
    return ends


# AVI-to-AVI is the case that broke: an AVI source's AAC carries a block_align (768 bytes), which
# made the AVI muxer time the copied packets by their bytes: the audio "ended" at 0.28 s of 1 s.
@pytest.mark.parametrize("source, ext", [("mp4", ".avi"), ("mp4", ".mp4"), ("mp4", ".mkv"), ("mp4", ".mov"),
                                         ("avi", ".avi")])
def test_copied_audio_ends_with_the_video_and_keeps_every_sample(tmp_path, source, ext):
    src = write_test_video(tmp_path / f"tone.{source}", num_frames=24)
    out = tmp_path / f"out{ext}"
    assert copy_through(src, out).audio_mode == "copied"
    ends = stream_ends(out)
    (seconds_in, rate), (seconds_out, _) = audio_seconds(src), audio_seconds(out)
    assert abs(ends["audio"] - ends["video"]) <= 1024 / rate  # one AAC frame
    # MKV and AVI cannot mark the encoder's priming frame that MP4 and MOV skip, so they decode one more
    assert round((seconds_out - seconds_in) * rate) in ((0, 1024) if source == "mp4" else (0,))


def test_audio_the_output_cannot_hold_is_reencoded_to_aac(tmp_path):
    src = write_test_video(tmp_path / "camera.avi", num_frames=12, audio_codec="pcm_u8")  # not allowed in MP4
    out = tmp_path / "out.mp4"
    writer = copy_through(src, out)
    assert writer.audio_mode == "re-encoded pcm_u8 -> aac"
    (seconds_in, rate), (seconds_out, _) = audio_seconds(src), audio_seconds(out)
    assert abs(seconds_out - seconds_in) <= 1024 / rate
    assert probe(out).num_frames == 12


def test_writer_keeps_ntsc_rate_and_crops_odd_sizes(tmp_path):
    src = write_test_video(tmp_path / "ntsc.mp4", num_frames=5, width=34, height=26,
                           fps=Fraction(30000, 1001), audio=False)
    out = tmp_path / "out.mp4"
    writer = copy_through(src, out, lambda f: f[:-1, :-1])  # 33x25: odd
    info = probe(out)
    assert info.rate == Fraction(30000, 1001) and info.num_frames == 5
    assert (info.width, info.height) == writer.size == (32, 24)
    assert writer.audio_mode == "none"


def test_phone_rotation_is_kept(tmp_path):
    src = tmp_path / "portrait.mp4"
    with av.open(str(src), "w") as out:  # how phones store portrait video: landscape frames + rotation
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.set_display_rotation(90)
        for frame in moving_pattern(4, 64, 48):
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
    assert probe(src).rotation == 90
    copy_through(src, tmp_path / "out.mp4")
    info = probe(tmp_path / "out.mp4")
    assert (info.rotation, info.width, info.height, info.num_frames) == (90, 64, 48, 4)


def test_writer_leaves_nothing_when_interrupted(clip, tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, Fraction(25), audio_from=clip) as writer:
            for i, frame in enumerate(stream_frames(clip)):
                writer.write(frame)
                if i == 5:
                    raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_partial_file_of_a_killed_run_is_removed_by_the_next(tmp_path):
    """kill -9 leaves the hidden partial file (no handler runs); the next write to the same
    output removes it, whatever process id it is named after (a live run is told by the output's
    lock, not by its id: test_output_safety.py::test_two_runs_on_one_output_never_both_succeed)."""
    stale = tmp_path / ".out.partial-4194000.mp4"
    alive_id = tmp_path / f".out.partial-{os.getppid()}.mp4"  # a live process's id, but it holds no lock
    for f in (stale, alive_id):
        f.write_bytes(b"half a video")
    with VideoWriter(tmp_path / "out.mp4", Fraction(24)) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_rejects_unknown_extension_and_bad_crf(tmp_path):
    with pytest.raises(UserError, match="extension"):
        VideoWriter(tmp_path / "out.gif", Fraction(25))
    with pytest.raises(UserError, match="crf"):
        VideoWriter(tmp_path / "out.mp4", Fraction(25), crf=99)


@pytest.mark.parametrize("threads", [1, 2])
def test_writer_sets_x264_threads(tmp_path, threads):
    """x264 records its settings in the stream (an SEI message): the thread count asked is the one
    used, as slice threads (each frame finished inside write(), none encoding in the background)."""
    path = tmp_path / "out.mp4"
    with VideoWriter(path, Fraction(24), threads=threads) as writer:
        for frame in moving_pattern(3, 256, 192):  # x264 caps the threads of tiny frames at 1
            writer.write(frame)
    settings = path.read_bytes()
    assert f" threads={threads} ".encode() in settings
    assert f" sliced_threads={int(threads > 1)} ".encode() in settings


def test_encoder_threads_auto_is_the_models_threads_beside_a_cpu_model():
    import torch

    from vsr.inference.video import encoder_threads
    from vsr.options import UpscaleOptions, options

    assert encoder_threads(options(UpscaleOptions), torch.device("cpu")) == torch.get_num_threads()
    assert encoder_threads(options(UpscaleOptions, {"encoder_threads": "auto"}), torch.device("cuda")) == 0
    assert encoder_threads(options(UpscaleOptions, {"encoder_threads": 4}), torch.device("cpu")) == 4


def test_truncated_files_are_errors(tmp_path):
    for faststart in (True, False):
        full = write_test_video(tmp_path / f"full{faststart}.mp4", num_frames=30, faststart=faststart)
        cut = tmp_path / f"cut{faststart}.mp4"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
        with pytest.raises(UserError, match="truncated"):
            info = probe(cut)  # without the index at the end the file does not even open
            for _ in count_checked(stream_frames(cut), info.num_frames, cut):
                pass


def test_not_a_video_and_missing_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(UserError, match="not a readable video"):
        probe(text)
    with pytest.raises(UserError, match="not found"):
        list(stream_frames(tmp_path / "missing.mp4"))


def photo_float(height: int, width: int):
    """A real photograph as a float `(3, H, W)` frame, pushed slightly past [0, 1] as model outputs are."""
    import torch
    from skimage import data, transform

    image = transform.resize(data.astronaut(), (height, width), anti_aliasing=True)
    return torch.from_numpy(image).permute(2, 0, 1).float().mul(1.1).sub(0.05)


def swscale_yuv420p(rgb: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


def test_float_frames_become_the_yuv_swscale_makes_of_them():
    """yuv420p() against swscale's rgb24 -> yuv420p of the same frame rounded to uint8: the same
    matrix, range and plane order. Luma differs by the one rounding it saves; chroma also by the
    filter (a 2x2 mean; swscale's bilinear reaches one more pixel each side), without bias."""
    from vsr.io.images import to_frames
    from vsr.io.writer import yuv420p

    frame = photo_float(96, 128)
    ours = yuv420p(frame.clone()).astype(int)
    theirs = swscale_yuv420p(to_frames(frame[None].clone())[0]).astype(int)
    assert ours.shape == theirs.shape == (144, 128)
    luma = np.abs(ours[:96] - theirs[:96])
    assert luma.max() <= 1 and luma.mean() < 0.2
    for plane in (slice(96, 120), slice(120, 144)):  # the Cb and Cr quarters
        diff = ours[plane] - theirs[plane]
        assert np.abs(diff).mean() < 0.5 and abs(diff.mean()) < 0.1


def decoded(path) -> np.ndarray:
    return np.stack(list(stream_frames(path, "pyav"))).astype(np.float64)


def test_writer_encodes_float_frames_at_least_as_well_as_uint8(tmp_path):
    """The float path (one rounding, into YUV) loses no more than rounding to RGB first, and crops
    odd sizes alike. crf=0: x264 is lossless, so only the conversions differ. The frames are
    inference tensors, as the model's outputs are (clamped in place all the same)."""
    import torch

    from vsr.io.images import to_frames

    with torch.inference_mode():
        frames = [photo_float(65, 91).roll(shift, dims=-1) for shift in range(0, 12, 4)]
    for name, convert in (("float.mp4", lambda f: f), ("uint8.mp4", lambda f: to_frames(f[None].clone())[0])):
        with VideoWriter(tmp_path / name, Fraction(24), crf=0) as writer:
            for frame in frames:
                writer.write(convert(frame))
        assert writer.size == (90, 64)
    reference = np.stack([f.clamp(0, 1)[:, :64, :90].permute(1, 2, 0).numpy() * 255 for f in frames])
    error = {name: np.mean((decoded(tmp_path / name) - reference) ** 2) for name in ("float.mp4", "uint8.mp4")}
    assert error["float.mp4"] <= error["uint8.mp4"] and error["float.mp4"] < 40  # 40: 32 dB (measured 33.3)


def test_pngs_written_after_the_video_reader_loads_are_readable(tmp_path):
    """decord's bundled zlib, loaded before OpenCV's, made cv2.imwrite's PNGs unreadable (evaluate's
    saved frames, stills); the reader loads OpenCV first. In a fresh process: import order matters."""
    import subprocess
    import sys

    code = ("from vsr.io.video import _decord; _decord(); import cv2, numpy as np; "
            f"assert cv2.imwrite({str(tmp_path / 'f.png')!r}, np.full((8, 8, 3), 7, np.uint8)); "
            f"assert (cv2.imread({str(tmp_path / 'f.png')!r}) == 7).all()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
