"""The Hydra configs of the four apps (a package so that Hydra finds them in an installed vsrlab).

Importing it registers the options of upscale.py, export.py and evaluate.py (vsr/options.py) with
Hydra: vsr/conf/upscale.yaml, export.yaml and evaluate.yaml compose onto them. Code that composes those
configs itself (`hydra.compose`) imports this package first. It also registers `${vsr.command:NAME}`,
how the `--help` texts name an entry point: `python NAME.py`, or `vsrlab-NAME` when the installed
console command runs.
"""

import sys
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from vsr.options import EvaluateOptions, ExportOptions, UpscaleOptions

SCHEMAS = {"upscale_options": UpscaleOptions, "export_options": ExportOptions, "evaluate_options": EvaluateOptions}
for _name, _schema in SCHEMAS.items():
    ConfigStore.instance().store(name=_name, node=_schema)


def command(name: str) -> str:
    """How a user runs entry point `name` the way they ran this one: `vsrlab-NAME` or `python NAME.py`."""
    return f"vsrlab-{name}" if Path(sys.argv[0]).name.startswith("vsrlab-") else f"python {name}.py"


OmegaConf.register_new_resolver("vsr.command", command, replace=True)
