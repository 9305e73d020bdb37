"""The run itself and its report: the experiment through Flower's simulation engine, then results.json, tables,
plots, the console summary and the tracker — the report stage both entry points (``fedunlearn``, ``flwr run``)
share."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fedunlearn.app.compose import container
from fedunlearn.app.errors import on_watchdog, to_file_only
from fedunlearn.config import Config
from fedunlearn.core.task import TaskConfig
from fedunlearn.data import federated_data
from fedunlearn.experiment.stages import run_experiment
from fedunlearn.flower.client_app import make_client_app
from fedunlearn.flower.simulation import simulate
from fedunlearn.reporting.progress import finish
from fedunlearn.reporting.report import report
from fedunlearn.reporting.tracking import track
from fedunlearn.results import RunResult


def execute(cfg: Config, dcfg: DictConfig, run_dir: Path) -> None:
    """Run the experiment through Flower's simulation engine, then write and print its report."""

    to_file_only("flwr", "ray")  # after Flower's import, which gives its logger a console handler
    sim = simulate(
        cfg.ray,
        cfg.fl.num_clients,
        make_client_app(TaskConfig.from_config(cfg)),
        lambda trainer: run_experiment(cfg, trainer, run_dir),
        cfg.fl.max_client_failures,
        on_watchdog,
        [len(p) for p in federated_data(cfg).partitions],
    )
    finish()
    publish(run_dir, cfg, sim.result, container(dcfg), {**sim.placement, "ray": sim.ray})


def publish(run_dir: Path, cfg: Config, result: RunResult, config: dict[str, Any], placement: dict[str, Any]) -> None:
    """The report stage of both entry points (``fedunlearn`` and ``flwr run``): results.json, tables, plots and the
    console summary, then the tracker if one is configured."""

    placement = {
        "num_cpus_per_client": cfg.ray.num_cpus_per_client,
        "num_gpus_per_client": cfg.ray.num_gpus_per_client,
        **placement,
    }
    result = dataclasses.replace(result, config=config, placement=placement)
    report(run_dir, result)
    tracked = track(run_dir, result, cfg.tracking)
    if tracked is not None:
        print(f"tracking: {tracked}")
