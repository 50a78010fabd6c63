"""The Hydra configs of the four apps (a package so that Hydra finds them in an installed vsrlab).

Importing it registers the options of upscale.py, export.py and evaluate.py (vsr/options.py) with
Hydra: conf/upscale.yaml, export.yaml and evaluate.yaml compose onto them. Code that composes those
configs itself (`hydra.compose`) imports this package first.
"""

from hydra.core.config_store import ConfigStore

from vsr.options import EvaluateOptions, ExportOptions, UpscaleOptions

SCHEMAS = {"upscale_options": UpscaleOptions, "export_options": ExportOptions, "evaluate_options": EvaluateOptions}
for _name, _schema in SCHEMAS.items():
    ConfigStore.instance().store(name=_name, node=_schema)
