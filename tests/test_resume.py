"""Kill a real run mid-training (SIGKILL to the driver alone) and mid-unlearning (to its process group), resume it with
``resume=true``, and compare with an uninterrupted run: everything but wall times must be equal."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY, load_results, run_cli

pytestmark = pytest.mark.e2e

MARK = "FEDUNLEARN_TEST_RUN"
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


def ray_processes(mark: str) -> list[str]:
    """Command lines of the Ray processes started by the run whose environment carries ``mark`` (other tests may run
    Ray beside this one: every Ray process inherits its driver's environment)."""
    import psutil

    names = ("ray::", "raylet", "gcs_server", "dashboard")
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if not any(n in cmd for n in names):
            continue
        try:
            if p.environ().get(MARK) == mark:
                found.append(cmd[:80])
        except psutil.Error:
            continue
    return found


def run_until(
    marker: str, run_dir: Path, cwd: Path, sig: signal.Signals = signal.SIGKILL, group: bool = True, mark: str = ""
) -> float:
    """Start a run (its environment carrying ``mark``) and send ``sig`` to it (and, with ``group``, its process group)
    as soon as a log line contains ``marker``; return the seconds it took to exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedunlearn", *RUN, "ray.num_cpus=2", f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", MARK: mark},
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
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
            break
    t0 = time.monotonic()
    seen += proc.stdout.readlines()
    proc.wait(timeout=60)
    assert proc.returncode in (-sig, 128 + sig), "".join(seen)[-3000:]
    return time.monotonic() - t0


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


def test_kill_9_of_the_driver_during_training_leaves_no_ray_process_and_resumes(uninterrupted, tmp_path: Path) -> None:
    """SIGKILL to the driver alone (what the OOM killer does): its Ray processes go with it, and the run resumes."""
    run_dir, mark = tmp_path / "run", tmp_path.name
    run_until("[train] round 4/12", run_dir, tmp_path, group=False, mark=mark)
    deadline = time.monotonic() + 15
    while ray_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_processes(mark) == []
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert 1 <= state["training"]["round"] < 12 and state["stages"] == {}  # the writer may lag the log
    assert not (run_dir / "results.json").exists()
    resumed = resume(run_dir, tmp_path)
    assert comparable(resumed) == comparable(uninterrupted)
    assert f"took over the lock of {run_dir.resolve()} from PID" in (run_dir / "fedunlearn.log").read_text()


def test_killed_during_unlearning_resumes_to_the_same_results(uninterrupted, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_until("[federaser] round 2/", run_dir, tmp_path)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["training"]["round"] == 12 and list(state["stages"]) == ["retrain"]
    resumed = resume(run_dir, tmp_path)
    assert comparable(resumed) == comparable(uninterrupted)
    assert resumed["certificates"] == ["certificate-1.json"]


def test_sigterm_stops_within_seconds_and_resumes(uninterrupted, tmp_path: Path) -> None:
    """What timeout, Slurm, Kubernetes and `ray job stop` send: the run ends cleanly, its checkpoint consistent."""
    run_dir = tmp_path / "run"
    took = run_until("[train] round 5/12", run_dir, tmp_path, signal.SIGTERM, group=False)
    assert took < 10, f"{took:.1f}s"
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert 4 <= state["training"]["round"] < 12
    resumed = resume(run_dir, tmp_path)
    assert comparable(resumed) == comparable(uninterrupted)
