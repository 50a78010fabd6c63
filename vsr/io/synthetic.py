"""Small synthetic videos (moving pattern + sine tone) for tests and demos; no download."""

from fractions import Fraction
from pathlib import Path

import numpy as np


def moving_pattern(num_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """`(T, H, W, 3)` uint8: smooth colour gradients and a square drifting across the frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    frames = []
    for t in range(num_frames):
        rgb = [0.5 + 0.4 * np.sin(x / 7 + y / 11 + phase[c] + 0.3 * t) for c in range(3)]
        frame = np.stack(rgb, -1)
        x0, y0 = (3 * t) % max(width - 8, 1), (2 * t) % max(height - 8, 1)
        frame[y0:y0 + 8, x0:x0 + 8] = (1.0, 0.9, 0.1)
        frames.append((frame * 255).round().astype(np.uint8))
    return np.stack(frames)


def write_test_video(path: str | Path, num_frames: int = 12, width: int = 64, height: int = 48,
                     fps: int | Fraction = 25, audio: bool = True, audio_codec: str = "aac",
                     sample_rate: int = 44100, faststart: bool = False) -> Path:
    """Write an H.264 clip of `moving_pattern` frames, with a 440 Hz tone as long as the video."""
    import av

    path = Path(path)
    rate = Fraction(fps)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream(audio_codec, rate=sample_rate) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for frame in moving_pattern(num_frames, width, height):
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
        if sound is not None:
            total = int(round(num_frames / rate * sample_rate))
            t = np.arange(total) / sample_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
            for start in range(0, total, 1024):
                chunk = tone[start:start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None], format="s16", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return path
