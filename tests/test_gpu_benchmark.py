"""benchmarks/gpu.py on a machine without a GPU: the throughput it measures is one client's local SGD, and the
placement part refuses to run without GPUs unless told to declare logical ones."""

import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_throughput_is_samples_per_second_of_local_sgd() -> None:
    from gpu import throughput

    rate = throughput("cnn", "cpu", samples=64, repeats=1)
    assert 10 < rate < 1e6


def test_placement_needs_gpus_or_logical_ones() -> None:
    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--parts", "placement"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "give --logical N" in proc.stderr
