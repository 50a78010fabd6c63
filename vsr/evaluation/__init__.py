"""Benchmark runs: full-clip inference, metrics, baselines, reports and plots (`python evaluate.py`).

`run` is imported lazily so that `vsr.evaluation.baselines` (used by conf/model/bicubic.yaml)
loads without matplotlib.
"""


def run(cfg, output_dir=None):
    """See `vsr.evaluation.runner.run`."""
    from vsr.evaluation.runner import run as _run

    return _run(cfg, output_dir)
