"""Shared helpers: compose the real Hydra config with overrides, tiny settings for fast runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Each pytest-xdist worker gets its share of the cores for torch, here and in the processes its tests start: threads
# beyond the cores only spin in OpenMP's busy-wait (measured on 2 cores with 2 workers: a third of the CPU time of
# the tests without Ray). Workers only (xdist's controller loads this file too, and the workers inherit its
# environment); a value the user set wins.
if "PYTEST_XDIST_WORKER" in os.environ:
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

import torch  # after OMP_NUM_THREADS: torch reads it once

from fedunlearn.app.compose import compose_config
from fedunlearn.config import Config

if "OMP_NUM_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Debian's dataset-fashion-mnist: tests that need real data skip without it.
FASHION_FILES = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

# A federation small enough for seconds-long runs: 400 synthetic 1x8x8 samples, 4 clients.
TINY = [
    "dataset=synthetic",
    "dataset.num_samples=400",
    "fl.num_clients=4",
    "fl.num_rounds=4",
    "fl.local_epochs=2",
    "fl.batch_size=16",
    "dataset.server_samples=20",
]


@pytest.fixture(autouse=True, scope="session")
def _signing_keys(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Certificates are signed with a key of the tests' own, never the machine's ~/.config/fedunlearn; reference
    models are cached in the tests' own folder."""
    os.environ["FEDUNLEARN_KEY_DIR"] = str(tmp_path_factory.mktemp("keys"))
    os.environ["FEDUNLEARN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def make_config(*overrides: str) -> Config:
    return compose_config(list(overrides))


@pytest.fixture
def tiny_config() -> Any:
    def build(*overrides: str) -> Config:
        return make_config(*TINY, *overrides)

    return build


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fedunlearn`` (a local 2-CPU Ray unless ``args`` say otherwise) and return the
    finished process."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONUNBUFFERED": "1"}
    ray_cpus = [] if any(a.startswith("ray.") for a in args) else ["ray.num_cpus=2"]
    return subprocess.run(
        [sys.executable, "-m", "fedunlearn", *args, *ray_cpus],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_results(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "results.json").read_text())
    return data


def local_trainer(cfg: Config) -> Any:
    """The ClientApp's training in this process (no Ray)."""
    from fedunlearn.core.federation import LocalTrainer
    from fedunlearn.core.task import TaskConfig

    return LocalTrainer(TaskConfig.from_config(cfg), cfg.fl.max_client_failures)


def run_in_process(cfg: Config, run_dir: Path, trainer: Any = None) -> dict[str, Any]:
    """A whole run without Ray; its results.json document (config aside)."""
    from fedunlearn.experiment import run_experiment
    from fedunlearn.results import to_json

    return to_json(run_experiment(cfg, trainer if trainer is not None else local_trainer(cfg), run_dir))


class Exited(BaseException):
    """The command's exit, caught: ``fedunlearn.app.errors._exit`` raises it instead of ending the test process."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@pytest.fixture
def cli_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``fedunlearn <args>`` in this process (no interpreter start-up: the one-line-error checks take a fraction of
    a second each): (exit code, stdout, stderr, seconds). Its locks are released and the logging Hydra configured
    for the run is put back afterwards, so that the next test starts as if nothing ran."""
    import logging
    import time

    from fedunlearn.app import cli, errors
    from fedunlearn.experiment import lock

    def leave(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(errors, "_exit", leave)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    named = {n: (lg.handlers[:], lg.level, lg.propagate) for n in ("fedunlearn.trace", "alembic", "flwr", "ray")
             for lg in [logging.getLogger(n)]}  # fmt: skip

    def run(*args: str) -> tuple[int, str, str, float]:
        monkeypatch.setattr(sys, "argv", ["fedunlearn", *args])
        capsys.readouterr()
        t0 = time.monotonic()
        code = 0
        try:
            cli.cli()
        except Exited as done:
            code = done.code
        except SystemExit as done:
            code = int(done.code or 0)
        finally:
            for held in list(lock._held):
                lock.release_run_dir(held)
            for handler in root.handlers[:]:
                if handler not in saved[0]:
                    root.removeHandler(handler)
                    handler.close()
            root.handlers[:], root.level = saved
            for name, (handlers, level, propagate) in named.items():
                lg = logging.getLogger(name)
                lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
        out = capsys.readouterr()
        return code, out.out, out.err, time.monotonic() - t0

    return run


def shared_fixture_users(path: Path) -> set[str]:
    """Names of the test functions in ``path`` that use one of its module-scoped fixtures, directly or through
    another of its fixtures (read from the source: xdist's controller schedules by node id and collects nothing)."""
    import ast

    tree = ast.parse(path.read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    def module_scoped(node: ast.FunctionDef) -> bool:
        return any(isinstance(d, ast.Call) and any(k.arg == "scope" and getattr(k.value, "value", None) == "module"
                                                    for k in d.keywords) for d in node.decorator_list)  # fmt: skip

    shared = {name for name, node in functions.items() if module_scoped(node)}
    grew = True
    while grew:
        users = {name for name, node in functions.items() if {a.arg for a in node.args.args} & shared}
        grew = not users <= shared
        shared |= users
    return {name for name in shared if name.startswith("test_")}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's default (load) distribution, except that the tests sharing a module-scoped fixture go to one worker:
    spread over two, each worker would build the fixture (a whole run, 20-30 s) again."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = Path(str(config.rootpath))
    users: dict[str, set[str]] = {}

    class SharedFixtureScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module, _, name = nodeid.partition("::")
            if module not in users:
                users[module] = shared_fixture_users(root / module) if module.endswith(".py") else set()
            return module if name.split("[")[0] in users[module] else nodeid

    return SharedFixtureScheduling(config, log)
