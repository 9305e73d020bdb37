"""Experiment tracking: a run logged to MLflow (sqlite store in the run directory, no server) is read back through
MLflow's API; TensorBoard and W&B (offline) get the same metrics from the same typed results."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedunlearn.config import ConfigError, TrackingConfig
from fedunlearn.experiment.preflight import tracker_installed as require
from fedunlearn.reporting.tracking import method_metrics, round_metrics, track
from fedunlearn.results import load
from tests.conftest import TINY, load_results, run_cli


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tracked")
    run_dir = tmp / "run"
    proc = run_cli(*TINY, "fl.num_rounds=3", "backdoor.clients=[1]", "forget.clients=[1]",
                   "unlearning.methods=[retrain,federaser]", "tracking=mlflow", f"hydra.run.dir={run_dir}",
                   cwd=tmp)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tracking: mlflow sqlite:///" in proc.stdout
    return run_dir


@pytest.mark.e2e
def test_mlflow_holds_the_runs_metrics(mlflow_run: Path) -> None:
    import mlflow

    res = load_results(mlflow_run)
    client = mlflow.MlflowClient(f"sqlite:///{mlflow_run.resolve()}/mlflow.db")
    experiment = client.get_experiment_by_name("fedunlearn")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "train/test_accuracy")
    assert [(m.step, m.value) for m in history] == [(r["round"], r["test_accuracy"]) for r in res["training"]["rounds"]]
    metrics = run.data.metrics
    for method in ("retrain", "federaser"):
        entry = res["unlearning"][method]
        assert metrics[f"{method}/test_accuracy"] == pytest.approx(entry["metrics"]["test_accuracy"])
        assert metrics[f"{method}/client_epochs"] == pytest.approx(entry["client_epochs"])
        assert metrics[f"{method}/megabytes"] == pytest.approx(
            (entry["bytes"]["to_clients"] + entry["bytes"]["from_clients"]) / 1e6
        )
    assert run.data.params["fl.num_rounds"] == "3"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "comparison.csv", "methods.png"} <= artifacts


@pytest.mark.e2e
def test_tensorboard_gets_the_same_scalars(mlflow_run: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    shutil.copytree(mlflow_run, run_dir)
    run = load(run_dir / "results.json")
    where = track(run_dir, run, TrackingConfig("tensorboard", "fedunlearn", None))
    assert where == f"tensorboard --logdir {run_dir / 'tensorboard'}"
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    accuracy = [(e.step, e.value) for e in events.Scalars("train/test_accuracy")]
    assert accuracy == [(step, pytest.approx(v)) for k, v, step in round_metrics(run) if k == "train/test_accuracy"]
    expected = dict(method_metrics(run))
    assert events.Scalars("federaser/speedup_epochs")[0].value == pytest.approx(expected["federaser/speedup_epochs"])
    assert "methods" in events.Tags()["images"]


@pytest.mark.e2e
def test_wandb_offline_run(mlflow_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    shutil.copytree(mlflow_run, run_dir)
    run = load(run_dir / "results.json")
    assert track(run_dir, run, TrackingConfig("wandb", "fedunlearn", None)) == f"wandb (offline) {run_dir / 'wandb'}"
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    history = [
        {key_of(item): json.loads(item.value_json) for item in record.history.item}
        for kind, record in wandb_records(next(offline.glob("run-*.wandb")))
        if kind == "history"
    ]
    rounds = load_results(mlflow_run)["training"]["rounds"]
    assert [(h["round"], h["train/test_accuracy"]) for h in history[:-1]] == [
        (r["round"], pytest.approx(r["test_accuracy"])) for r in rounds
    ]
    methods = history[-1]  # the last step: every model's catalog columns
    assert methods["retrain/test_accuracy"] == pytest.approx(dict(method_metrics(run))["retrain/test_accuracy"])
    assert methods["federaser/client_epochs"] == pytest.approx(dict(method_metrics(run))["federaser/client_epochs"])
    assert (offline / "files" / "results.json").exists()


def key_of(item: Any) -> str:
    return str(item.key or "/".join(item.nested_key))


def wandb_records(path: Path) -> Iterator[tuple[str, Any]]:
    """The records of an offline W&B run file (LevelDB log format: 32 KiB blocks, records with a 7-byte header,
    after a 7-byte file header), as W&B's own protobuf messages; W&B ships no Python reader of it any more."""
    from wandb.proto import wandb_internal_pb2

    raw, off, pending = path.read_bytes(), 7, b""
    while off + 7 <= len(raw):
        if (left := 32768 - off % 32768) < 7:
            off += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[off : off + 7])
        data, off = raw[off + 7 : off + 7 + length], off + 7 + length
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield str(record.WhichOneof("record_type")), record


def test_a_missing_tracker_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"tracking: mlflow is not installed: pip install 'fedunlearn\[mlflow\]'"):
        require(TrackingConfig("mlflow", "fedunlearn", None))
    require(TrackingConfig("none", "fedunlearn", None))
