"""One short run through `fedunlearn` against two others that must give the same results.json: `flwr run .` (Flower's
own CLI runs the same ServerApp/ClientApp stages), and Flower's own code paths forced where fedunlearn reaches past
Flower's public API — the simulation engine's message extractor (flower/engine.py) and the server's node list
(flower/server_app.py) change how fast a run goes, never what it computes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import psutil
import pytest

from fedunlearn.app.compose import compose_config, config_container
from fedunlearn.app.flwr import overrides_of
from fedunlearn.flower.engine import FLOWER_OWN_ENV
from tests.conftest import TINY, load_results, run_cli
from tests.test_ray_cluster import free_ports

REPO = Path(__file__).resolve().parents[1]
RUN = [*TINY, "fl.num_rounds=3", "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,federaser]"]


def test_the_run_config_composes_to_fedunlearns_default() -> None:
    run_config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    compose_config(overrides_of(run_config))  # valid
    assert config_container(overrides_of(run_config)) == config_container([])


def test_run_config_keys_become_overrides() -> None:
    config = {"seed": 3, "fl.num_rounds": 5, "history.record": True, "run-dir": "x",
              "overrides": "model=cnn 'a=[1, 2]'"}  # fmt: skip
    assert overrides_of(config) == ["fl.num_rounds=5", "history.record=true", "seed=3", "model=cnn", "a=[1, 2]"]


def without(keys: set[str] | tuple[str, ...], doc: Any) -> Any:
    """The document with every entry named in ``keys`` removed, at any depth."""
    if isinstance(doc, dict):
        return {k: without(keys, v) for k, v in doc.items() if k not in keys}
    if isinstance(doc, list):
        return [without(keys, v) for v in doc]
    return doc


def comparable(results: dict[str, Any]) -> Any:
    """results.json without what differs by nature: times, where the run wrote, and Ray's placement."""
    return without({"wall_s", "speedup_vs_retrain", "placement", "path", "certificates", "config"}, results)


def stop_local_superlink(port: int) -> list[str]:
    """The README's way to stop the SuperLink `flwr run` started (on ``port``): SIGTERM to it and to its children
    (the flower-superexec it starts in a session of its own); what is still running 15 s later."""
    links = [p for p in psutil.process_iter(["cmdline"])
             if "flower-superlink" in " ".join(p.info["cmdline"] or []) and str(port) in p.info["cmdline"]]  # fmt: skip
    tree = [q for link in links for q in (link, *link.children(recursive=True))]
    for q in [q for link in links for q in (*link.children(), link)]:
        q.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=15)
    left = [" ".join(q.cmdline())[:80] for q in alive if q.is_running() and q.status() != psutil.STATUS_ZOMBIE]
    for q in alive:  # (so that a failing test leaves nothing behind)
        q.send_signal(signal.SIGKILL)
    return left


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUN through `fedunlearn`, with fedunlearn's engine patch; its run directory."""
    tmp = tmp_path_factory.mktemp("direct")
    with pytest.MonkeyPatch.context() as env:
        env.delenv(FLOWER_OWN_ENV, raising=False)
        proc = run_cli(*RUN, f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "run"


@pytest.mark.e2e
def test_flwr_run_gives_the_same_results_as_fedunlearn(direct: Path, tmp_path: Path) -> None:
    http, control = free_ports(2)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flwr-home"), "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(http),
           "FLWR_LOCAL_CONTROL_API_PORT": str(control), "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    run_config = f"run-dir='{tmp_path / 'flwr-runs'}' overrides='{' '.join(RUN)} ray.num_cpus=2'"
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "flwr"), "run", ".", "--stream", "--run-config", run_config,
             "--federation-config", "num-supernodes=4"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        left = stop_local_superlink(http)
    assert left == [], left
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (flwr_dir,) = (tmp_path / "flwr-runs").iterdir()
    via_flwr = load_results(flwr_dir)
    via_fedunlearn = load_results(direct)
    assert comparable(via_flwr) == comparable(via_fedunlearn)
    assert via_flwr["config"]["fl"] == via_fedunlearn["config"]["fl"]


TIMING = ("wall_s", "wall", "placement", "distill_s", "selection_s", "federated_evaluation_s")


def without_timings(doc: Any) -> Any:
    """The document with every timing and placement removed (they differ from run to run)."""
    return without(TIMING, doc)


@pytest.mark.e2e
def test_flowers_own_code_paths_give_the_same_results(
    direct: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FLOWER_OWN_ENV, "1")
    proc = run_cli(*RUN, f"hydra.run.dir={tmp_path / 'own'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "using Flower's" in (tmp_path / "own" / "fedunlearn.log").read_text()
    assert "using Flower's" not in (direct / "fedunlearn.log").read_text()
    own = without_timings(load_results(tmp_path / "own"))
    patched = without_timings(load_results(direct))
    assert own == patched
