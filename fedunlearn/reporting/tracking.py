"""Optional experiment tracking (``tracking=mlflow|tensorboard|wandb``), written from the typed results after
``results.json``: the config as parameters, training's per-round metrics, every method's metrics and cost columns
(the catalog's keys, as in the tables) and the run's files (results.json, tables, plots) as artifacts.

Each backend is an optional extra, imported only when asked for; ``require`` checks it at start.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fedunlearn.config import TrackingConfig
from fedunlearn.evaluation.catalog import COLUMNS
from fedunlearn.reporting.tables import rows
from fedunlearn.results import RunResult

ARTIFACTS = ("results.json", "comparison.md", "comparison.tex", "comparison.csv", "methods.png", "rounds.png",
             "frontier.png")  # fmt: skip


def flat_params(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """The resolved config as ``a.b.c`` → value strings."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from flat_params(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], str(node)


def round_metrics(result: RunResult) -> Iterator[tuple[str, float, int]]:
    """Training's rounds: (key, value, round)."""
    for r in result.training.rounds:
        for key, value in (("test_accuracy", r.test_accuracy), ("test_loss", r.test_loss), ("round_wall_s", r.wall_s)):
            if value is not None and math.isfinite(value):
                yield f"train/{key}", float(value), r.round


def method_metrics(result: RunResult) -> Iterator[tuple[str, float]]:
    """Every model's catalog columns (before unlearning, each method): (``method/key``, value), finite values only."""
    for row in rows(result):
        name = str(row["method"]).replace(" ", "_")
        for column in COLUMNS:
            value = row.get(column.key)
            if isinstance(value, int | float) and math.isfinite(value):
                yield f"{name}/{column.key}", float(value)


def artifacts(run_dir: Path) -> list[Path]:
    return [run_dir / name for name in ARTIFACTS if (run_dir / name).exists()]


def track(run_dir: Path, result: RunResult, cfg: TrackingConfig) -> str | None:
    """Log the run to ``cfg.backend``; returns where it went (None: tracking off)."""
    if cfg.backend == "none":
        return None
    backends: dict[str, Callable[[Path, RunResult, TrackingConfig], str]] = {
        "mlflow": _mlflow, "tensorboard": _tensorboard, "wandb": _wandb,
    }  # fmt: skip
    return backends[cfg.backend](run_dir, result, cfg)


def _mlflow(run_dir: Path, result: RunResult, cfg: TrackingConfig) -> str:
    import mlflow
    from mlflow.entities import Metric, Param

    uri = cfg.uri or f"sqlite:///{run_dir.resolve()}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(cfg.experiment, artifact_location=(run_dir / "mlartifacts").resolve().as_uri())
    )
    started = client.create_run(experiment_id, run_name=run_dir.name, tags={"run_dir": str(run_dir.resolve())})
    run_id = started.info.run_id
    now = int(time.time() * 1000)
    params = [Param(k, v[:6000]) for k, v in flat_params(result.config)]
    metrics = [Metric(k, v, now, step) for k, v, step in round_metrics(result)]
    metrics += [Metric(k, v, now, 0) for k, v in method_metrics(result)]
    for i in range(0, len(params), 100):
        client.log_batch(run_id, params=params[i : i + 100])
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    for path in artifacts(run_dir):
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    return f"mlflow {uri} (experiment {cfg.experiment!r}, run {run_id})"


def _tensorboard(run_dir: Path, result: RunResult, cfg: TrackingConfig) -> str:
    import matplotlib.image
    from torch.utils.tensorboard import SummaryWriter

    logdir = run_dir / "tensorboard"
    writer = SummaryWriter(str(logdir))
    writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in flat_params(result.config)))
    for key, value, step in round_metrics(result):
        writer.add_scalar(key, value, step)
    for key, value in method_metrics(result):
        writer.add_scalar(key, value, 0)
    for path in artifacts(run_dir):
        if path.suffix == ".png":
            writer.add_image(path.stem, matplotlib.image.imread(path)[..., :3], dataformats="HWC")
    writer.close()
    return f"tensorboard --logdir {logdir}"


def _wandb(run_dir: Path, result: RunResult, cfg: TrackingConfig) -> str:
    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    wb = wandb.init(
        project=cfg.experiment, name=run_dir.name, dir=str(run_dir), mode=mode,  # type: ignore[arg-type]
        config=dict(flat_params(result.config)),
    )  # fmt: skip
    by_round: dict[int, dict[str, float]] = {}
    for key, value, step in round_metrics(result):
        by_round.setdefault(step, {})[key] = value
    for step, values in sorted(by_round.items()):
        wb.log({**values, "round": step})
    wb.log(dict(method_metrics(result)))  # one step after the rounds; W&B's summary keeps each key's last value
    for path in artifacts(run_dir):
        wb.save(str(path), base_path=str(run_dir), policy="now")
    wb.finish()
    wandb.teardown()  # finish() returns before W&B's service has closed the run file; teardown waits for it
    return f"wandb ({mode}) {run_dir / 'wandb'}"
