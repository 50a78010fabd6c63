"""Shared test settings and helpers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Tests use tiny tensors: one OpenMP thread is faster there, and on a busy 2-core machine
# 2+ spinning threads per process made steps up to 100x slower. Subprocesses inherit it.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


def run_entry(script: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a root entry script (train.py, evaluate.py, ...) as a user would."""
    return subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def entry():
    return run_entry
