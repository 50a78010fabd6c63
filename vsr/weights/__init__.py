"""The shipped models as package data, so that a plain `pip install .` has them: `<preset>/x<factor>/`
(export folders: model.json + model.safetensors and their ONNX / ncnn graphs) and `interp/`, the
frame interpolator. The experiments that made them link their folders here (experiments/corpus/x2, ...)."""

from importlib.resources import files
from pathlib import Path

ROOT = Path(str(files(__name__)))
