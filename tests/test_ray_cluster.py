"""A real Ray cluster job: start a head node on loopback, submit a tiny run with the job script, check it."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY, load_results

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def venv_env() -> dict[str, str]:
    """This interpreter's bin directory first on PATH, so the head node and the job find ``fedunlearn``."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, int]]:
    """A 2-CPU head node of its own (temp dir, ports); yields its job API address and GCS port."""
    gcs, dashboard, client, agent_grpc, agent_http, metrics, runtime_env = free_ports(7)
    temp_dir = tempfile.mkdtemp(prefix="fu-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
            "--node-ip-address=127.0.0.1", f"--port={gcs}", "--include-dashboard=true",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--dashboard-agent-listen-port={agent_http}",
            f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}",
            "--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp_dir}", "--disable-usage-stats",
        ],
        env=venv_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopping it leaves every other Ray alone
    )  # fmt: skip
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head node did not come up (exit code {head.poll()})")
            time.sleep(1)
        yield address, gcs
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_job_on_a_local_ray_cluster(ray_head: tuple[str, int], tmp_path: Path) -> None:
    address, gcs_port = ray_head
    run_dir = tmp_path / "job"
    env = {**venv_env(), "RAY_ADDRESS": address, "FEDUNLEARN_RESULTS": str(run_dir)}
    proc = subprocess.run(
        [
            "bash", str(REPO / "simulations/ray_cluster/submit.sh"), *TINY, "fl.num_rounds=3",
            "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,federaser]",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "succeeded" in proc.stdout + proc.stderr
    res = load_results(run_dir)
    assert res["config"]["ray"]["address"] == "auto"
    cluster = res["placement"]["ray"]
    assert int(cluster["gcs_address"].rsplit(":", 1)[1]) == gcs_port  # joined the head node, started none
    assert cluster["resources"]["CPU"] == 2.0 and cluster["nodes"] == 1
    assert res["placement"]["workers"] <= 2
    assert set(res["unlearning"]) == {"retrain", "federaser"}
    assert res["unlearning"]["retrain"]["metrics"]["l2_to_retrain"] == 0.0
    noise = ("Ignoring upload to cluster", "is now ignored by default", "Overriding runtime_env")
    assert not [line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in noise)]


def test_a_local_run_never_joins_a_running_head(ray_head: tuple[str, int], tmp_path: Path) -> None:
    """ray=local (ray.address: null) starts a private Ray even while a head runs on this machine, and may declare
    its own resources."""
    _, gcs_port = ray_head
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", *TINY, "experiment=train_only", "fl.num_rounds=2", "ray.num_cpus=2",
         f"hydra.run.dir={run_dir}"],
        env=venv_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(load_results(run_dir)["placement"]["ray"]["gcs_address"].rsplit(":", 1)[1]) != gcs_port


def test_the_job_api_address_is_not_a_cluster_address(ray_head: tuple[str, int], tmp_path: Path) -> None:
    address, _ = ray_head
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", *TINY, "experiment=train_only", "ray=cluster",
         f"hydra.run.dir={tmp_path}"],
        env={**venv_env(), "RAY_ADDRESS": address}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "ray.address" in proc.stderr
    assert "job-submission" in proc.stderr
