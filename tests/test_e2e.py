"""End to end through the ``fedunlearn`` Hydra app: Flower's simulation engine with ClientApps on Ray."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedunlearn.history import HistoryStore
from tests.conftest import TINY, load_results, run_cli

pytestmark = pytest.mark.e2e

METRICS = {
    "test_accuracy",
    "remaining_accuracy",
    "forgotten_accuracy",
    "backdoor_asr",
    "mia_auc",
    "l2_to_retrain",
    "angle_to_retrain",
    "kl_to_retrain",
    "js_to_retrain",
}


def test_showcase_through_flower(tmp_path: Path) -> None:
    """The default methods on a tiny showcase: results.json's records, costs and metrics; on the console one
    progress bar per phase and the comparison table, every round line in the log file."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedunlearn",
            *TINY,
            "fl.num_rounds=6",
            "backdoor.clients=[1]",
            "forget.clients=[1]",
            "progress=bars",
            "ray.num_cpus=2",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        timeout=300,
    )  # fmt: skip  (bytes: text mode would turn the bars' carriage returns into newlines)
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, stderr[-3000:]
    lines = [line for line in (stdout + stderr).split("\n") if line.strip()]  # what a terminal keeps
    assert len(lines) < 40, "\n".join(lines)
    assert "] round " not in stdout + stderr  # round lines only in the log
    assert any(line.rsplit("\r", 1)[-1].startswith("train: 100%") for line in lines)
    assert sum(line.lstrip("\r").startswith("train:") for line in lines) == 1  # one bar, redrawn in place
    log = (run_dir / "fedunlearn.log").read_text()
    assert all(f"[train] round {r}/6" in log for r in range(1, 7))
    assert "[retrain] round 6/6" in log and "[federaser] round" in log
    assert "federaser" in stdout and "speedup" in stdout  # console comparison table
    res = load_results(run_dir)
    assert res["config"]["fl"]["num_clients"] == 4
    train = res["training"]
    assert [r["round"] for r in train["rounds"]] == list(range(1, 7))
    assert set(train["rounds"][0]) >= {"round", "test_accuracy", "test_loss", "wall_s", "clients"}
    assert train["rounds"][0]["clients"] == [0, 1, 2, 3]
    assert train["client_epochs"] == 6 * 4 * 2
    hist = res["history"]
    assert hist["rounds_stored"] == 6 and hist["dtype"] == "float32" and hist["interval"] == 1
    stored = sum(p.stat().st_size for p in (run_dir / "history").rglob("*.safetensors"))
    assert hist["bytes"] == stored
    assert set(res["before_unlearning"]["metrics"]) >= METRICS
    assert set(res["unlearning"]) == {"retrain", "kd_recover", "federaser", "fedaccum"}
    for name, entry in res["unlearning"].items():
        assert entry["clients"] == [1]
        assert {"wall_s", "client_epochs", "rounds", "speedup_vs_retrain", "metrics"} <= set(entry)
        assert set(entry["metrics"]) >= METRICS, name
    assert res["unlearning"]["retrain"]["client_epochs"] == 6 * 3 * 2
    # Δt = 2 → 3 steps, 2 calibrated with ⌈0.5·2⌉ = 1 epoch on 3 clients, sent through Flower
    assert res["unlearning"]["federaser"]["client_epochs"] == 2 * 3
    assert res["unlearning"]["federaser"]["rounds"] == 2
    assert res["unlearning"]["federaser"]["speedup_vs_retrain"]["client_epochs"] == pytest.approx(6.0)
    assert res["unlearning"]["retrain"]["metrics"]["l2_to_retrain"] == 0.0


def test_multirun_and_same_seed_gives_identical_rounds_packed_or_not(tmp_path: Path) -> None:
    """A sweep of two jobs, clients in packs (2 actors, one pack each: two clients a message) and one message per
    client: the same updates, so the same rounds."""
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", *TINY, "experiment=train_only", "seed=1", "ray.num_cpus=2", "ray.packs_per_actor=1",
                   "ray.pack_clients=true,false", f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    packed, single = load_results(sweep / "0"), load_results(sweep / "1")
    assert (packed["config"]["ray"]["pack_clients"], single["config"]["ray"]["pack_clients"]) == (True, False)
    for folder in (sweep, sweep / "0", sweep / "1"):  # each locked while in use, released (PID cleared) after
        assert (folder / ".fedunlearn.lock").read_text() == ""
    assert "took over the lock" not in (sweep / "1" / "fedunlearn.log").read_text()
    accuracy = [r["test_accuracy"] for r in packed["training"]["rounds"]]
    assert accuracy == [r["test_accuracy"] for r in single["training"]["rounds"]]
    assert packed["placement"]["train_messages"] == len(accuracy) * 2
    assert single["placement"]["train_messages"] == len(accuracy) * 4


def test_dirichlet_twenty_clients_with_sampling_and_dropouts(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli(
        "experiment=train_only",
        "partition=dirichlet",
        "partition.alpha=0.3",
        "fl.num_clients=20",
        "seed=7",
        "fl.num_rounds=2",
        "fl.fraction_train=0.5",
        "fl.dropout_rate=0.3",
        "history.dtype=float16",
        "ray.packs_per_actor=1",
        "ray.num_cpus=2",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = load_results(run_dir)
    rounds = res["training"]["rounds"]
    assert [len(r["clients"]) + len(r["failed_clients"]) for r in rounds] == [10, 10]
    failed = sum(len(r["failed_clients"]) for r in rounds)
    assert failed > 0 and res["placement"]["failed_replies"] == failed  # error replies through Flower
    # 10 clients a round on 2 actors, one pack per actor of about equal work (dropouts answered inside their pack)
    assert res["placement"]["train_messages"] == 2 * 2
    assert res["training"]["client_updates"] == 20 - failed
    manifest = json.loads((run_dir / "history" / "manifest.json").read_text())
    for r in rounds:  # the history holds exactly the clients that replied
        assert manifest["rounds"][str(r["round"])]["clients"] == r["clients"]
    assert res["history"]["dtype"] == "float16"


def test_clients_share_logical_gpus(tmp_path: Path) -> None:
    """2 logical GPUs, 0.5 GPU per client: Flower's Ray backend runs 4 actors, 2 per GPU id."""
    run_dir = tmp_path / "run"
    proc = run_cli(
        *TINY,
        "experiment=train_only",
        "fl.num_clients=8",
        "fl.num_rounds=2",
        "fl.local_epochs=6",
        "ray.num_cpus=8",
        "ray.num_gpus=2",
        "ray.num_gpus_per_client=0.5",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    placement = load_results(run_dir)["placement"]
    assert placement["num_gpus_per_client"] == 0.5
    assert placement["workers"] == 4
    assert placement["workers_per_gpu_id"] == {"0": 2, "1": 2}
    assert 2 <= placement["max_concurrent_clients"] <= 4
    assert placement["devices"] == ["cpu"]  # logical GPUs: CUDA is not visible, clients train on CPU


def test_a_tolerated_client_crash_is_recorded_apart_from_dropouts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDUNLEARN_INJECT_FAULT", "train-2:3,retrain-3:2")
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain]",
                   "fl.max_client_failures=1", "fl.exact_reference=false", f"hydra.run.dir={run_dir}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = load_results(run_dir)
    rounds = res["training"]["rounds"]
    assert rounds[1]["failures"] == [{"client": 3, "error": "InjectedFault: injected fault in train-2 for client 3 "
                                                          "(FEDUNLEARN_INJECT_FAULT)"}]  # fmt: skip
    assert rounds[1]["failed_clients"] == [] and rounds[1]["clients"] == [0, 1, 2]
    assert all(r["failures"] == [] for i, r in enumerate(rounds) if i != 1)
    assert res["unlearning"]["retrain"]["recovery_rounds"][2]["failures"][0]["client"] == 2
    assert res["unlearning"]["retrain"]["exact"] is False and "retrain (inexact)" in proc.stdout
    assert res["placement"]["client_failures"] == 2
    assert "client failures tolerated (fl.max_client_failures): 2" in proc.stdout


def test_the_newer_methods_through_flower(tmp_path: Path) -> None:
    """PUF (its leaving client trains through Flower), NoT, FedQUIT, Crab, SIFU and kd_recover, side by side."""
    run_dir = tmp_path / "run"
    methods = "[retrain,puf,fednot,fedquit,crab,sifu,kd_recover]"
    proc = run_cli(*TINY, "fl.num_rounds=6", "backdoor.clients=[1]", "forget.clients=[1]",
                   f"unlearning.methods={methods}", "unlearning.sifu.recovery.max_rounds=3", f"hydra.run.dir={run_dir}",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = load_results(run_dir)
    u = res["unlearning"]
    assert set(u) == {"retrain", "puf", "fednot", "fedquit", "crab", "sifu", "kd_recover"}
    assert u["puf"]["recovery_rounds"][0]["clients"] == [1]  # the leaving client's one epoch, through Flower
    assert u["puf"]["client_updates"] >= 1 and u["puf"]["bytes"]["from_clients"] > 0
    for name in ("puf", "fednot", "fedquit", "sifu", "kd_recover"):
        assert u[name]["stop"]["rule"] in ("remaining_accuracy", "max_rounds"), name
    assert u["kd_recover"]["stop"]["after"] <= 1  # at most 5% of 6 training rounds, rounded up
    assert u["crab"]["info"]["rollback_round"] == 1
    assert u["crab"]["info"]["losses"] == "recorded"  # history.client_stats=auto: through the ClientApps
    store = HistoryStore.open(run_dir / "history")
    for t in store.rounds():
        assert set(store.client_stats(t, "received_loss") or {}) == set(store.participants(t))
        assert set(store.client_stats(t, "distance") or {}) == set(store.participants(t))
    for name in ("puf", "fednot", "fedquit", "sifu", "kd_recover"):  # their stop rule's federated evaluations
        assert u[name]["info"]["federated_evaluations"] >= 1 and u[name]["info"]["federated_evaluation_s"] > 0
    assert u["kd_recover"]["info"]["distill_s"] > 0
    assert (run_dir / "frontier.png").exists() and "frontier.png" in proc.stdout
