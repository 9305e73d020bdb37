"""``flwr run .``: the same run as ``fedunlearn``, started through Flower's own CLI and its local simulation.

Flower passes the run config (pyproject's ``[tool.flwr.app.config]``, overridden by ``--run-config``) to both apps.
Every key but two is a Hydra override (``fl.num_rounds = 20`` → ``fl.num_rounds=20``); ``overrides`` holds any
others as one string of Hydra overrides (``"dataset=synthetic model=cnn"``) and ``run-dir`` is where the run
writes (a fresh timestamped folder below it). The config is composed and validated exactly as ``fedunlearn`` does,
the ServerApp runs the same stages and writes the same results.json; each ClientApp builds its task from the same
composed config. The federation's ``num-supernodes`` must equal ``fl.num_clients``.
"""

from __future__ import annotations

import functools
import logging
import shlex
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from omegaconf import OmegaConf

from fedunlearn.app.compose import compose, container, load_config
from fedunlearn.app.publish import publish
from fedunlearn.config import Config, ConfigError
from fedunlearn.core.task import TaskConfig
from fedunlearn.experiment.lock import lock_run_dir
from fedunlearn.experiment.preflight import preflight
from fedunlearn.experiment.stages import run_experiment
from fedunlearn.flower.client_app import make_client_app
from fedunlearn.flower.server_app import FlowerTrainer

log = logging.getLogger("fedunlearn")
NOT_OVERRIDES = ("overrides", "run-dir")


def overrides_of(run_config: Mapping[str, Any]) -> list[str]:
    """Flower's run config → Hydra overrides (booleans as true/false, everything else as written)."""
    out = []
    for key, value in sorted(run_config.items()):
        if key in NOT_OVERRIDES:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(f"{key}={text}")
    return out + shlex.split(str(run_config.get("overrides", "")))


@functools.cache
def _composed(overrides: tuple[str, ...]) -> tuple[Config, dict[str, Any]]:
    dcfg = compose(list(overrides))
    return load_config(dcfg), container(dcfg)


def config_of(run_config: Mapping[str, Any]) -> tuple[Config, dict[str, Any]]:
    """The validated config and its resolved container for ``run_config`` (composed once per process)."""
    return _composed(tuple(overrides_of(run_config)))


@functools.cache
def _task_app(overrides: tuple[str, ...]) -> ClientApp:
    return make_client_app(TaskConfig.from_config(_composed(overrides)[0]))


class RunConfigClientApp(ClientApp):
    """Flower's ClientApp for ``flwr run``: the task comes from the run config, composed once per process."""

    def __call__(self, message: Message, context: Context) -> Message:
        return _task_app(tuple(overrides_of(context.run_config)))(message, context)


app = ServerApp()
client_app = RunConfigClientApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Compose and check the config, run the stages with the Grid's ClientApps, write the report."""
    cfg, config = config_of(context.run_config)
    run_dir = Path(str(context.run_config.get("run-dir", "outputs/flwr"))).resolve() / time.strftime(
        "%Y-%m-%d_%H-%M-%S"
    )
    nodes = len(list(grid.get_node_ids()))
    if nodes and nodes != cfg.fl.num_clients:
        raise ConfigError(
            "fl.num_clients",
            f"{cfg.fl.num_clients}, but the federation has {nodes} SuperNodes: "
            f"flwr run . --federation-config num-supernodes={cfg.fl.num_clients}",
        )
    lock_run_dir(run_dir)
    preflight(cfg, run_dir)
    log.info("run directory: %s", run_dir)
    trainer = FlowerTrainer(grid, cfg.fl.num_clients, cfg.fl.max_client_failures, threading.Event())
    result = run_experiment(cfg, trainer, run_dir)
    publish(run_dir, cfg, result, config, trainer.placement.summary())
    OmegaConf.save(OmegaConf.create(config), run_dir / "config.yaml")
