"""A battery of bad inputs through the command's entry point: each ends with exit code != 0, one ``fedunlearn:``
line naming the key to change, no Python traceback on the console, no results.json, within 15 s when start-up
checks catch it and 30 s when Ray has to be asked. What start-up checks catch runs in the test's process (the same
``cli()`` the command runs, its exit caught); what needs Ray runs as a real process."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_config, run_in_process

# A tiny run: every case adds one bad value to it.
BASE = (
    "fl.num_rounds=2", "fl.local_epochs=1", "fl.num_clients=4", "backdoor.clients=[0]", "forget.clients=[0]",
    "unlearning.methods=[retrain]",
)  # fmt: skip
# Upper bounds that tell "ends in seconds" from "hangs" on a busy 2-core machine (not performance claims): a start-up
# check before Ray, and one that needs Ray up (its start-up alone is 5-15 s there).
STARTUP, RAY = 15.0, 60.0

CASES: list[tuple[list[str], str, float]] = [
    # (overrides, text the one line must contain (the key), time limit)
    (["fl.lr=-0.1"], "fl.lr", STARTUP),
    (["fl.num_clients=0"], "fl.num_clients", STARTUP),
    (["fl.fraction_train=1.5"], "fl.fraction_train", STARTUP),
    (["fl.dropout_rate=1.0"], "fl.dropout_rate", STARTUP),
    (["fl.max_client_failures=-1"], "fl.max_client_failures", STARTUP),
    (["fl.on_divergence=maybe"], "fl.on_divergence", STARTUP),
    (["ray.num_cpus_per_client=0"], "ray.num_cpus_per_client", STARTUP),
    (["ray.num_gpus_per_client=-1"], "ray.num_gpus_per_client", STARTUP),
    (["ray.num_cpus=2", "ray.num_cpus_per_client=3"], "ray.num_cpus_per_client", STARTUP),
    (["ray.num_gpus=1", "ray.num_gpus_per_client=2"], "ray.num_gpus_per_client", STARTUP),
    (["fl.num_clients=5000", "partition=shards"], "fl.num_clients", STARTUP),
    (["partition=shards", "partition.shards_per_client=400"], "partition.shards_per_client", STARTUP),
    (["partition=dirichlet", "partition.min_partition_size=400"], "partition.min_partition_size", STARTUP),
    (["partition=iid", "partition.alpha=0.3"], "partition.alpha", STARTUP),
    (["backdoor.target_label=42"], "backdoor.target_label", STARTUP),
    (["backdoor.trigger_size=9"], "backdoor.trigger_size", STARTUP),
    (["backdoor.clients=[7]"], "backdoor.clients", STARTUP),
    (["unlearning.methods=[]"], "unlearning.methods", STARTUP),
    (["unlearning.methods=[magic]"], "unlearning.methods", STARTUP),
    (["forget.clients=[]"], "forget.clients", STARTUP),
    (["history.record=false"], "history.record", STARTUP),
    (["history.interval=3", "unlearning.methods=[federaser]"], "unlearning.federaser.interval", STARTUP),
    (["history.interval=2", "unlearning.methods=[fedrecover]"], "history.interval", STARTUP),
    (["forget.clients=[]", "unlearning.methods=[federaser]", "forget.schedule=[{round:5,clients:[0]}]"],
     "forget.schedule[0].round", STARTUP),
    (["forget.clients=[]", "unlearning.methods=[federaser]", "fl.num_rounds=4",
      "forget.schedule=[{round:2,clients:[0]},{round:2,clients:[1]}]"], "forget.schedule[1].round", STARTUP),
    (["dataset=cifar10", "dataset.hf_path=nonexistent/xyz"], "dataset.hf_path", STARTUP),
    (["dataset.num_samples=500"], "dataset.num_samples", STARTUP),
    (["dataset=synthetic", "dataset.shape=[64]", "model=cnn"], "model", STARTUP),
    (["dataset.server_samples=100000"], "dataset.server_samples", STARTUP),
    (["dataset=imagenet"], "dataset", STARTUP),
    (["fl.no_such_key=1"], "fl.no_such_key", STARTUP),
    (["+fl.extra=1"], "fl.extra", STARTUP),
    (["fl.num_rounds=abc"], "fl.num_rounds", STARTUP),
    (["resume=maybe"], "resume", STARTUP),
    (["unlearning.federaser.calibration_ratio=2"], "unlearning.federaser.calibration_ratio", STARTUP),
    (["ray.address=127.0.0.1:1"], "ray.address", RAY),
    (["ray.address=127.0.0.1:6399"], "ray.address", RAY),
    (["ray.address=http://127.0.0.1:8265"], "ray.address", RAY),
    (["ray.address=127.0.0.1:1", "ray.num_cpus=2"], "ray.num_cpus", STARTUP),
    (["ray.num_gpus_per_client=0.5"], "ray.num_gpus_per_client", RAY),
    (["ray.num_cpus_per_client=64"], "ray.num_cpus_per_client", RAY),
]  # fmt: skip


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return proc, time.monotonic() - t0


def assert_one_line(
    proc: subprocess.CompletedProcess[str], wall: float, names: str, limit: float, run_dir: Path
) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("fedunlearn: "), proc.stderr[-2000:]
    assert names in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert wall < limit, f"{wall:.1f}s"
    assert not (run_dir / "results.json").exists()


def _in_process(run: Any, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    code, out, err, wall = run(*args)
    return subprocess.CompletedProcess([], code, out, err), wall


def _ray(overrides: list[str]) -> list[str]:
    return [] if any(o.startswith(("ray.address", "ray=", "ray.num_cpus=")) for o in overrides) else ["ray.num_cpus=2"]


STARTUP_CASES = [c for c in CASES if c[2] == STARTUP]
RAY_CASES = [c for c in CASES if c[2] == RAY]


@pytest.mark.parametrize(("overrides", "names", "limit"), STARTUP_CASES, ids=[" ".join(c[0]) for c in STARTUP_CASES])
def test_bad_input_is_one_line(
    tmp_path: Path, overrides: list[str], names: str, limit: float, cli_in_process: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "")
    code, out, err, wall = cli_in_process(*BASE, *overrides, *_ray(overrides), f"hydra.run.dir={tmp_path / 'run'}")
    proc = subprocess.CompletedProcess([], code, out, err)
    assert_one_line(proc, wall, names, limit, tmp_path / "run")


@pytest.mark.parametrize(("overrides", "names", "limit"), RAY_CASES, ids=[" ".join(c[0]) for c in RAY_CASES])
def test_bad_ray_input_is_one_line(tmp_path: Path, overrides: list[str], names: str, limit: float) -> None:
    """Ray's own folder is the test's (short: Ray's socket paths have a length limit), so that ``ray.address=auto``
    finds no cluster another process started on this machine."""
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_tmp:
        env = {"RAY_ADDRESS": "", "RAY_TMPDIR": ray_tmp}
        proc, wall = cli(*BASE, *overrides, *_ray(overrides), f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert_one_line(proc, wall, names, limit, tmp_path / "run")


def test_a_cluster_run_without_a_cluster_is_one_line(tmp_path: Path, cli_in_process: Any, monkeypatch: Any) -> None:
    """``ray=cluster`` (address auto) finds no cluster: Ray's own search is pointed at this test's empty folder and
    sees no GCS process, so that other Ray instances on the machine (other tests', a user's) do not count."""
    import ray._private.services as services

    monkeypatch.setenv("RAY_ADDRESS", "")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: [])
    proc, wall = _in_process(cli_in_process, *BASE, "ray=cluster", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line(proc, wall, "ray.address", RAY, tmp_path / "run")


def test_ray_address_from_the_job_api_is_refused(tmp_path: Path, cli_in_process: Any, monkeypatch: Any) -> None:
    """RAY_ADDRESS=http://... is what `ray job submit` needs; a run told to join a cluster must say it is not one."""
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    proc, wall = _in_process(cli_in_process, *BASE, "ray=cluster", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line(proc, wall, "ray.address", STARTUP, tmp_path / "run")
    assert "RAY_ADDRESS=http://127.0.0.1:8265" in proc.stderr


@pytest.mark.e2e
def test_a_crashing_client_stops_the_run_with_its_id_round_and_error(tmp_path: Path) -> None:
    proc, wall = cli(
        *BASE, "ray.num_cpus=2", f"hydra.run.dir={tmp_path / 'run'}", env={"FEDUNLEARN_INJECT_FAULT": "train-2:1"}
    )
    assert_one_line(proc, wall, "client 1 failed in round 2 of train: InjectedFault", RAY, tmp_path / "run")
    assert proc.returncode == 4 and "fl.max_client_failures" in proc.stderr
    assert "InjectedFault" in (tmp_path / "run" / "fedunlearn.log").read_text()  # the traceback is in the log


# -- resuming ---------------------------------------------------------------------------------------

RUN = ("dataset=synthetic", "dataset.num_samples=400", "dataset.server_samples=20", *BASE)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run_in_process(make_config(*RUN), run_dir)
    return run_dir


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _damage(history: Path, how: str) -> Any:
    victim = history / "round_00002" / "client_00001.safetensors"
    if how == "corrupt":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.write_bytes(bytes(data))
    else:
        victim.unlink()


def test_resume_into_a_directory_without_a_run_names_the_path(tmp_path: Path, cli_in_process: Any) -> None:
    missing = tmp_path / "typo"
    proc, wall = _in_process(cli_in_process, *RUN, "resume=true", f"hydra.run.dir={missing}")
    assert_one_line(proc, wall, f"{missing} holds no run to resume", STARTUP, missing)
    assert "hydra.run.dir" in proc.stderr


def test_resume_with_another_config_names_the_keys_that_differ(
    finished: Path, tmp_path: Path, cli_in_process: Any
) -> None:
    run_dir = _copy(finished, tmp_path / "run")
    proc, wall = _in_process(cli_in_process, *RUN, "seed=5", "fl.lr=0.05", "resume=true", f"hydra.run.dir={run_dir}")
    assert_one_line(proc, wall, "different config", STARTUP, tmp_path / "none")
    assert "seed (0 → 5)" in proc.stderr and "fl.lr (0.1 → 0.05)" in proc.stderr


@pytest.mark.parametrize(("how", "says"), [("corrupt", "is corrupted (checksum mismatch)"), ("missing", "is missing")])
def test_resume_with_a_damaged_history_names_round_and_client(
    finished: Path, tmp_path: Path, how: str, says: str, cli_in_process: Any
) -> None:
    run_dir = _copy(finished, tmp_path / "run")
    _damage(run_dir / "history", how)
    proc, wall = _in_process(cli_in_process, *RUN, "resume=true", f"hydra.run.dir={run_dir}")
    assert_one_line(proc, wall, f"history file for round 2, client 1 {says}", STARTUP, run_dir)
    assert proc.returncode == 3
