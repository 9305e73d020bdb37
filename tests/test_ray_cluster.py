"""A real two-node Ray cluster on one machine, with token authentication on: a head node and a worker node on
loopback (1 CPU and 1 logical GPU each), a tiny run submitted with the job script and placed on both nodes; a job
without the token is refused."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
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


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, int, str]]:
    """A head node and a worker node of their own (temp dir, ports), token authentication on; yields the job API
    address, the GCS port and the token."""
    gcs, dashboard, client, *ports = free_ports(11)
    token = secrets.token_hex(16)
    env = {**venv_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    # short: Ray's socket paths must fit 107 bytes. One per node, as on separate machines: a worker node sharing the
    # head's session dir would unpack the job's working_dir over the driver's
    temp_dir, worker_dir = (tempfile.mkdtemp(prefix=f"fu-ray{i}-", dir="/tmp") for i in range(2))
    ray_bin = str(Path(sys.executable).parent / "ray")

    def node(*args: str, agent: list[int]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [ray_bin, "start", "--block", "--node-ip-address=127.0.0.1", *args,
             f"--dashboard-agent-grpc-port={agent[0]}", f"--dashboard-agent-listen-port={agent[1]}",
             f"--metrics-export-port={agent[2]}", f"--runtime-env-agent-port={agent[3]}",
             "--num-cpus=1", "--num-gpus=1", "--disable-usage-stats"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it leaves every other Ray alone
        )  # fmt: skip

    head = node("--head", f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}", f"--temp-dir={temp_dir}",
                agent=ports[:4])  # fmt: skip
    worker: subprocess.Popen[bytes] | None = None
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(f"{address}/api/version", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head node did not come up (exit code {head.poll()})")
            time.sleep(1)
        worker = node(f"--address=127.0.0.1:{gcs}", f"--temp-dir={worker_dir}", agent=ports[4:8])
        probe = "import ray; ray.init(); print(len([n for n in ray.nodes() if n['Alive']]))"
        while True:
            nodes = subprocess.run([sys.executable, "-c", probe], env={**env, "RAY_ADDRESS": f"127.0.0.1:{gcs}"},
                                   capture_output=True, text=True, timeout=60).stdout.strip()  # fmt: skip
            if nodes == "2":
                break
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray worker node did not join (exit code {worker.poll()}, nodes {nodes!r})")
            time.sleep(1)
        yield address, gcs, token
    finally:
        if worker is not None:
            stop(worker)
        stop(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(worker_dir, ignore_errors=True)


def test_job_on_a_local_ray_cluster(ray_head: tuple[str, int], tmp_path: Path) -> None:
    address, gcs_port, token = ray_head
    run_dir = tmp_path / "job"
    env = {**venv_env(), "RAY_ADDRESS": address, "FEDUNLEARN_RESULTS": str(run_dir), "RAY_AUTH_TOKEN": token}
    proc = subprocess.run(
        [
            "bash", str(REPO / "simulations/ray_cluster/submit.sh"), *TINY, "fl.num_rounds=3",
            "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,federaser]",
            "ray.num_gpus_per_client=1",
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
    assert cluster["resources"]["CPU"] == 2.0 and cluster["resources"]["GPU"] == 2.0 and cluster["nodes"] == 2
    assert res["placement"]["workers"] <= 2
    assert len(res["placement"]["client_runs_per_node"]) == 2  # clients ran on both nodes
    assert set(res["unlearning"]) == {"retrain", "federaser"}
    assert res["unlearning"]["retrain"]["metrics"]["l2_to_retrain"] == 0.0
    noise = ("Ignoring upload to cluster", "is now ignored by default", "Overriding runtime_env")
    assert not [line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in noise)]


def test_a_local_run_never_joins_a_running_head(ray_head: tuple[str, int], tmp_path: Path) -> None:
    """ray=local (ray.address: null) starts a private Ray even while a head runs on this machine, and may declare
    its own resources."""
    _, gcs_port, _ = ray_head
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", *TINY, "experiment=train_only", "fl.num_rounds=2", "ray.num_cpus=2",
         f"hydra.run.dir={run_dir}"],
        env=venv_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(load_results(run_dir)["placement"]["ray"]["gcs_address"].rsplit(":", 1)[1]) != gcs_port


def test_the_job_api_address_is_not_a_cluster_address(ray_head: tuple[str, int], tmp_path: Path) -> None:
    address, _, _ = ray_head
    proc = subprocess.run(
        [sys.executable, "-m", "fedunlearn", *TINY, "experiment=train_only", "ray=cluster",
         f"hydra.run.dir={tmp_path}"],
        env={**venv_env(), "RAY_ADDRESS": address}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "ray.address" in proc.stderr
    assert "job-submission" in proc.stderr


def test_a_job_without_the_token_is_refused(ray_head: tuple[str, int, str]) -> None:
    """The job API runs arbitrary code for whoever reaches it: with token authentication it refuses anyone
    without the token (the command line and plain HTTP alike)."""
    address, _, _ = ray_head
    env = {k: v for k, v in venv_env().items() if not k.startswith("RAY_AUTH")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", address, "--", "echo", "pwned"],
        env={**env, "HOME": tempfile.mkdtemp()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert "AuthenticationError" in out and "succeeded" not in out
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{address}/api/jobs/", timeout=10)
    assert refused.value.code == 401


def test_submit_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    """`ray get-auth-token --generate` leaves ~/.ray/auth_token world-readable; submit.sh stops before any upload."""
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("0" * 64)
    token.chmod(0o644)
    env = {k: v for k, v in venv_env().items() if not k.startswith("RAY_AUTH")}
    proc = subprocess.run(
        ["bash", str(REPO / "simulations/ray_cluster/submit.sh"), "fl.num_rounds=1"],
        env={**env, "HOME": str(tmp_path), "RAY_ADDRESS": "http://127.0.0.1:1"}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"submit.sh: {token} is readable by other users (mode 644): chmod 600 {token}"
