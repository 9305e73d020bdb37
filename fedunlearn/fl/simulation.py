"""Run an experiment inside Flower's simulation engine: a ServerApp driving ClientApps on Ray."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ray
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp
from flwr.simulation import run_simulation

from fedunlearn.config import Config, RayConfig
from fedunlearn.experiment import run_experiment
from fedunlearn.fl.client_app import make_client_app
from fedunlearn.fl.trainer import FlowerTrainer


def backend_config(ray: RayConfig) -> dict[str, Any]:
    """Flower's Ray backend settings: how Ray starts (or which cluster it joins) and client resources."""
    init_args: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": True}
    if ray.address is not None:
        init_args["address"] = ray.address
    else:
        if ray.num_cpus is not None:
            init_args["num_cpus"] = ray.num_cpus
        if ray.num_gpus is not None:
            init_args["num_gpus"] = ray.num_gpus
    return {
        "init_args": init_args,
        "client_resources": {"num_cpus": float(ray.num_cpus_per_client), "num_gpus": float(ray.num_gpus_per_client)},
    }


def ray_cluster() -> dict[str, Any]:
    """The Ray instance the simulation ran on: its GCS address, alive nodes and total resources."""
    if not ray.is_initialized():
        return {}
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {
        "gcs_address": ray.get_runtime_context().gcs_address,
        "nodes": len([n for n in nodes if n.get("Alive")]),
        "resources": {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory")},
    }


def make_server_app(cfg: Config, run_dir: Path, results: dict[str, Any]) -> ServerApp:
    """A ServerApp whose main runs the whole experiment and leaves its results in ``results``,
    with where the ClientApps ran under ``placement``."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        trainer = FlowerTrainer(grid, cfg.fl.num_clients)
        try:
            results.update(run_experiment(cfg, trainer, run_dir))
        except Exception as err:  # handed to simulate(), which re-raises it outside Flower's engine
            results["error"] = err
            return
        results["placement"] = {
            "num_cpus_per_client": cfg.ray.num_cpus_per_client,
            "num_gpus_per_client": cfg.ray.num_gpus_per_client,
            **trainer.placement.summary(),
            "ray": ray_cluster(),
        }

    return app


def simulate(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Train and unlearn through Flower's simulation engine; return the results."""
    results: dict[str, Any] = {}
    # Flower's deprecation notice for run_simulation and Ray's accelerator tip are noise here.
    logging.getLogger("flwr").setLevel(logging.ERROR)
    for name in ("ray", "alembic", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_simulation(
        server_app=make_server_app(cfg, run_dir, results),
        client_app=make_client_app(cfg),
        num_supernodes=cfg.fl.num_clients,
        backend_config=backend_config(cfg.ray),
    )
    if isinstance(results.get("error"), Exception):
        raise results["error"]
    if not results:
        raise RuntimeError("the simulation ended without results (see the errors above)")
    return results
