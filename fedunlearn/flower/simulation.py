"""Run a ServerApp ``main`` against ClientApps in Flower's simulation engine on Ray — and always come back.

The launcher starts Ray itself (a private local instance, or the cluster named by ``ray.address``, within
``ray.connect_timeout_s``): a local Ray listens on the loopback interface only and requires a random token that
exists only in the environment of this process and of the Ray processes it starts (``private_ray``). It checks
that one client actor fits before any client starts, then runs the simulation.
Whatever ends it — the ServerApp's main returning or raising, Flower's engine failing, SIGTERM or Ctrl-C — the
outcome is raised or returned here: a stop request reaches the server loop through ``stop``; a watchdog ends the
process if the run has not stopped ``GRACE_S`` seconds after it was asked to; Ray is always shut down. The
launcher knows nothing of what ``main`` does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from flwr.clientapp import ClientApp
from flwr.simulation import run_simulation

from fedunlearn.config import ConfigError, RayConfig
from fedunlearn.core.federation import ClientTrainer, Interrupted, SimulationError, Stopped
from fedunlearn.flower import engine, reaper
from fedunlearn.flower.server_app import ServerOutcome, make_server_app

log = logging.getLogger(__name__)
GRACE_S = 8.0  # after a stop request, the run has this long to end before the watchdog ends the process


@dataclass
class Simulation:
    """A run's outcome and where it ran."""

    result: Any
    placement: dict[str, Any] = field(default_factory=dict)
    ray: dict[str, Any] = field(default_factory=dict)


# -- Ray start-up -----------------------------------------------------------------------------------


def cluster_address(address: str) -> str:
    """``ray.address`` (``auto``, or host:port) as the GCS host:port to join; ConfigError when it is not one."""
    from ray._private.services import get_ray_address_from_environment

    env = os.environ.get("RAY_ADDRESS", "")
    if address == "auto" and env.startswith(("http://", "https://")):
        raise ConfigError(
            "ray.address",
            f"auto reads RAY_ADDRESS={env}, the job-submission (dashboard) address, not a cluster address; inside "
            "`ray job submit` Ray sets it for you, elsewhere give the head's GCS address, e.g. ray.address=<head>:6379",
        )
    if address.startswith(("http://", "https://", "ray://")):
        raise ConfigError(
            "ray.address", f"{address} is not a cluster (GCS) address; give host:port of the head, e.g. <head>:6379"
        )
    try:
        resolved = get_ray_address_from_environment(address, None) if address == "auto" else address
    except ConnectionError:
        raise ConfigError(
            "ray.address",
            "auto found no running Ray cluster on this machine (start one with `ray start --head`, or set "
            "ray.address=<head>:6379); ray=local starts a private one",
        ) from None
    host, sep, port = str(resolved).rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError("ray.address", f"{address!r} is not host:port")
    return f"{host}:{port}"


def _reachable(address: str, timeout: float) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError:
        return False
    return True


def start_ray(cfg: RayConfig) -> dict[str, Any]:
    """Start a private local Ray (``ray.address: null``) or join the cluster at ``ray.address``; what it has."""
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if cfg.address is None:
        pythonpath = os.pathsep.join([*sys.path, *filter(None, [os.environ.get("PYTHONPATH")])])
        kwargs.update(
            address="local",
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            include_dashboard=cfg.include_dashboard,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        )
        where = "a local Ray"
    else:
        address = cluster_address(cfg.address)
        if not _reachable(address, min(cfg.connect_timeout_s, 10.0)):
            raise ConfigError(
                "ray.address", f"nothing answers at {address} (is the head running? `ray start --head --port=...`)"
            )
        kwargs["address"] = address
        where = f"the Ray cluster at {address}"
    if cfg.address is None:  # on this thread: Ray ties the local GCS and raylet to the thread that starts them
        _init(kwargs, where)
    else:  # joining starts no local process; a thread bounds the wait
        _init_within(kwargs, where, cfg.connect_timeout_s)
    return cluster_info()


# What makes a local Ray private. Ray's own switches, read by Ray's processes from their environment:
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray use the loopback address as the node address (as it does on macOS
# and Windows), so that the GCS, raylets, workers, agents, dashboard and metrics servers listen on 127.0.0.1 only;
# RAY_AUTH_MODE=token with RAY_AUTH_TOKEN makes every gRPC and HTTP endpoint require that token (Ray >= 2.52).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")


def _reload_ray_settings(cluster: bool) -> None:
    """Make this process's Ray read its settings again: the loopback switch (``cluster``: Ray's
    ``ENABLE_RAY_CLUSTER``, read at import) and the authentication mode and token (cached by Ray's C++ core)."""
    from ray._private import ray_constants
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    ray_constants.ENABLE_RAY_CLUSTER = cluster
    Config.initialize("{}")
    AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def private_ray() -> Iterator[None]:
    """For the block: a local Ray started in it binds to the loopback interface and requires a fresh random
    token; the token lives only in this process's environment (inherited by the Ray processes it starts), never
    in a file. The environment and Ray's settings are restored afterwards, so that a later ``ray=cluster`` run in
    the same process uses its own."""
    from ray._private import ray_constants

    if ray.is_initialized():
        raise SimulationError("a private local Ray cannot start: Ray is already running in this process")
    saved = {k: os.environ.get(k) for k in (LOOPBACK_ENV, *AUTH_ENV)}
    cluster = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update({LOOPBACK_ENV: "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    _reload_ray_settings(False)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not ray.is_initialized():  # a shutdown still under way keeps the settings it runs with
            _reload_ray_settings(cluster)


def _init(kwargs: dict[str, Any], where: str) -> None:
    try:
        ray.init(**kwargs)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SimulationError(f"Ray could not start ({where}): {first}") from err


def _init_within(kwargs: dict[str, Any], where: str, timeout: float) -> None:
    outcome: dict[str, BaseException | None] = {}

    def connect() -> None:
        try:
            _init(kwargs, where)
            outcome["error"] = None
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=connect, name="fedunlearn-ray-init", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" not in outcome:
        raise ConfigError("ray.address", f"could not join {where} within {timeout:.0f}s (ray.connect_timeout_s)")
    if outcome["error"] is not None:
        raise outcome["error"]


def cluster_info() -> dict[str, Any]:
    """The Ray instance in use: its GCS address, alive nodes and total resources."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {
        "gcs_address": ray.get_runtime_context().gcs_address,
        "nodes": len([n for n in nodes if n.get("Alive")]),
        "resources": {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory")},
    }


def check_resources(cfg: RayConfig) -> int:
    """How many client actors fit on Ray's nodes (Flower's own count); ConfigError naming the key when none does."""
    cpus, gpus = cfg.num_cpus_per_client, cfg.num_gpus_per_client
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive") and n.get("Resources")]  # type: ignore[no-untyped-call]
    fits = 0
    for res in nodes:
        per_node = int(res.get("CPU", 0) // cpus)
        if gpus > 0:
            per_node = min(per_node, int(res.get("GPU", 0) // gpus))
        fits += per_node
    if fits:
        return fits
    most_gpus = max((r.get("GPU", 0) for r in nodes), default=0)
    most_cpus = max((r.get("CPU", 0) for r in nodes), default=0)
    if gpus > 0 and most_gpus == 0:
        raise ConfigError(
            "ray.num_gpus_per_client",
            f"{gpus} GPU per client, but Ray sees no GPU; set ray.num_gpus_per_client=0, or ray.num_gpus=N to "
            "declare N logical GPUs (clients then place as on GPUs and train on the CPU)",
        )
    if gpus > most_gpus:
        raise ConfigError(
            "ray.num_gpus_per_client", f"{gpus} GPU per client, but no Ray node has more than {most_gpus} GPU(s)"
        )
    raise ConfigError(
        "ray.num_cpus_per_client", f"{cpus} CPUs per client, but no Ray node has more than {most_cpus:g} CPU(s)"
    )


@contextlib.contextmanager
def ray_session(cfg: RayConfig) -> Iterator[dict[str, Any]]:
    """Ray for the length of the block, then shut down; a local one is private (``private_ray``) and a reaper ends
    its agents if this process is killed."""
    local = cfg.address is None
    guard = reaper.start() if local else None
    try:
        with private_ray() if local else contextlib.nullcontext():
            try:
                yield start_ray(cfg)
            finally:
                shutdown_ray()
    finally:
        if guard is not None and guard.stdin is not None:
            guard.stdin.close()


def shutdown_ray(timeout: float = 10.0) -> None:
    """``ray.shutdown()``, given at most ``timeout`` seconds."""
    if not ray.is_initialized():
        return
    thread = threading.Thread(target=ray.shutdown, name="fedunlearn-ray-shutdown", daemon=True)
    thread.start()
    thread.join(timeout)


def driver_threads(threads: int) -> None:
    """Torch threads of the driver's server-side work: the cores the client actors do not hold. More would
    oversubscribe them, and torch's spinning threads then slow the server's work many times over on a busy
    machine (measured: kd's distillation 0.25 s idle, 10.7 s busy with all cores)."""
    torch.set_num_threads(threads)
    log.info("server-side torch work on %d thread(s)", threads)


# -- signals and the watchdog ---------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, on_timeout: Callable[[int], None]) -> Iterator[list[int]]:
    """SIGTERM and SIGINT set ``stop`` (the list yielded records which came); if the run has not ended
    ``GRACE_S`` seconds later, ``on_timeout(signum)`` ends the process."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:  # a second signal: do not wait any longer
            on_timeout(signum)
        received.append(signum)
        log.warning("%s received: stopping (the checkpoint stays consistent; resume=true continues)",
                    signal.Signals(signum).name)  # fmt: skip
        stop.set()
        threading.Thread(target=_watchdog, args=(signum,), daemon=True, name="fedunlearn-watchdog").start()

    def _watchdog(signum: int) -> None:
        time.sleep(GRACE_S)
        on_timeout(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- the simulation ---------------------------------------------------------------------------------


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def simulate(
    cfg: RayConfig,
    num_clients: int,
    client_app: ClientApp,
    main: Callable[[ClientTrainer], Any],
    max_failures: int,
    on_timeout: Callable[[int], None],
    sizes: Sequence[int] | None = None,
) -> Simulation:
    """Run ``main(trainer)`` as the ServerApp of a Flower simulation with ``num_clients`` ClientApps; return its
    result, or raise what ended it (its own exception, Stopped, SimulationError, ConfigError).

    Every client actor is warmed up before ``main`` starts; with ``ray.pack_clients`` a round's clients go out in
    packs cut for the actors, their work estimated from ``sizes`` (samples per client)."""
    stop = threading.Event()
    outcome = ServerOutcome()
    # Flower's deprecation notice for run_simulation and Ray's accelerator tip are noise here.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    threads = torch.get_num_threads()
    try:
        return _simulate(cfg, num_clients, client_app, main, max_failures, on_timeout, sizes, stop, outcome)
    finally:
        torch.set_num_threads(threads)


def _simulate(
    cfg: RayConfig,
    num_clients: int,
    client_app: ClientApp,
    main: Callable[[ClientTrainer], Any],
    max_failures: int,
    on_timeout: Callable[[int], None],
    sizes: Sequence[int] | None,
    stop: threading.Event,
    outcome: ServerOutcome,
) -> Simulation:
    # the signal handlers go in after Ray's start, which installs its own (Python's and its C++ core's)
    with ray_session(cfg) as info, stop_on_signals(stop, on_timeout) as received, engine.picked_up_at_once():
        fits = check_resources(cfg)
        log.info(
            "Ray: %s, %d node(s), %s; %d client actor(s) at a time",
            info["gcs_address"], info["nodes"], info["resources"], fits,
        )  # fmt: skip
        pack_count = fits * cfg.packs_per_actor if cfg.pack_clients else None
        if cfg.address is None:  # the driver's own torch work (distillation, evaluation) on the cores no actor holds
            spare = int((cfg.num_cpus or os.cpu_count() or 1) - fits * cfg.num_cpus_per_client)
            driver_threads(max(1, spare))
        app = make_server_app(main, num_clients, max_failures, stop, outcome, pack_count, sizes, warm_up=fits)
        engine_error: BaseException | None = None
        try:
            run_simulation(
                server_app=app,
                client_app=client_app,
                num_supernodes=num_clients,
                backend_config={
                    "client_resources": {
                        "num_cpus": float(cfg.num_cpus_per_client),
                        "num_gpus": float(cfg.num_gpus_per_client),
                    },
                },
            )
        except BaseException as err:  # Flower's engine: the ServerApp thread may still be waiting for clients
            engine_error = err
        if engine_error is not None or received:
            stop.set()
        if not outcome.done.wait(GRACE_S):
            raise SimulationError("the ServerApp did not stop after the simulation engine ended")
    if received:
        raise Stopped(received[0])
    if isinstance(outcome.error, Exception) and not isinstance(outcome.error, Interrupted):
        raise outcome.error
    if engine_error is not None:
        cause = _root_cause(engine_error)
        raise SimulationError(f"Flower's simulation engine failed: {type(cause).__name__}: {cause}") from engine_error
    if outcome.error is not None:
        raise outcome.error
    return Simulation(outcome.result, outcome.placement, info)
