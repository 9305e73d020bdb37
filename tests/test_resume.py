"""Kill a real run (SIGKILL to its whole process group) mid-training and mid-unlearning, resume it with
``resume=true``, and compare with an uninterrupted run: everything but wall times must be equal."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY, load_results, run_cli

pytestmark = pytest.mark.e2e

RUN = (
    *TINY,
    "fl.num_rounds=12",
    "backdoor.clients=[1]",
    "forget.clients=[1]",
    "unlearning.methods=[retrain,federaser]",
)
TIMING = {"wall_s", "wall", "placement"}


def comparable(value: Any) -> Any:
    """The results without what legitimately differs between two runs: wall times and process placement."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in TIMING and k != "resume"}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def run_until(marker: str, run_dir: Path, cwd: Path) -> None:
    """Start a run and SIGKILL it (and its Ray processes) as soon as a log line contains ``marker``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedunlearn", *RUN, "ray.num_cpus=2", f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-3000:]


def resume(run_dir: Path, cwd: Path) -> dict[str, Any]:
    proc = run_cli(*RUN, "resume=true", f"hydra.run.dir={run_dir}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stdout + proc.stderr or "saved outcome" in proc.stdout + proc.stderr
    return load_results(run_dir)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("whole")
    proc = run_cli(*RUN, f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_results(tmp / "run")


def test_killed_during_training_resumes_to_the_same_results(uninterrupted, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_until("[train] round 4/12", run_dir, tmp_path)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert 3 <= state["training"]["round"] < 12 and state["stages"] == {}
    assert not (run_dir / "results.json").exists()
    resumed = resume(run_dir, tmp_path)
    assert comparable(resumed) == comparable(uninterrupted)


def test_killed_during_unlearning_resumes_to_the_same_results(uninterrupted, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_until("[federaser] round 2/", run_dir, tmp_path)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["training"]["round"] == 12 and list(state["stages"]) == ["retrain"]
    resumed = resume(run_dir, tmp_path)
    assert comparable(resumed) == comparable(uninterrupted)
    assert resumed["certificates"] == ["certificate-1.json"]
