"""Shared by the benchmarks: run ``fedunlearn`` as a child process and sample its process tree's memory."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil


@dataclass
class Measured:
    wall_s: float
    peak_rss_tree_mb: float  # driver + Ray daemons + client actors, summed, at the worst sample
    peak_rss_driver_mb: float
    results: dict[str, Any]


def _tree_rss(root: psutil.Process) -> tuple[int, int]:
    """RSS of ``root`` and its descendants summed, and of ``root`` alone (0 once it has exited)."""
    try:
        driver = root.memory_info().rss
        children = root.children(recursive=True)
    except psutil.Error:
        return 0, 0
    total = driver
    for child in children:
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total, driver


def run_fedunlearn(run_dir: Path, overrides: list[str], interval_s: float = 0.2) -> Measured:
    """Run ``python -m fedunlearn`` with ``overrides`` into ``run_dir``; wall time, peak RSS, results."""
    args = [sys.executable, "-m", "fedunlearn", *overrides, f"hydra.run.dir={run_dir}"]
    peak = [0, 0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, driver = _tree_rss(root)
            peak[0], peak[1] = max(peak[0], total), max(peak[1], driver)
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"fedunlearn {' '.join(overrides)} failed:\n{output[-3000:]}")
    results = json.loads((run_dir / "results.json").read_text())
    return Measured(wall, peak[0] / 2**20, peak[1] / 2**20, results)


def run_again(run_dir: Path, copy: Path, overrides: list[str], methods: list[str]) -> dict[str, Any]:
    """``methods`` once more on a finished run's trained model: a copy of ``run_dir`` with their stages dropped from
    its checkpoint, resumed (a fresh simulation); the copy's ``unlearning`` results. The copy is removed."""
    shutil.copytree(run_dir, copy)
    state_path = copy / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    for m in methods:
        state["stages"].pop(m, None)
        (copy / "models" / f"{m}.safetensors").unlink(missing_ok=True)
    state_path.write_text(json.dumps(state))
    (copy / "results.json").unlink()
    results = run_fedunlearn(copy, [*overrides, "resume=true"]).results
    shutil.rmtree(copy)
    return dict(results["unlearning"])


def machine() -> str:
    """One line on where the figures came from."""
    import platform

    import torch

    cpus = psutil.cpu_count(logical=True)
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.processor() or platform.machine()}, {cpus} CPUs, {mem:.0f} GiB, torch {torch.__version__}"


def write_outputs(out_dir: Path, name: str, payload: dict[str, Any], table: str) -> None:
    """``<name>.json`` and ``<name>.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(table + "\n")
