"""The ``fedunlearn`` command: a Hydra app (config in ``conf/``; sweeps with ``-m``).

``main`` composes and validates the config once, checks what can be checked before Ray starts, runs the
experiment in Flower's simulation engine and reports. Anything that goes wrong ends the run with one line on the
console — what failed and what to change — a non-zero exit code, and the traceback in the run's log file.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fedunlearn.app.compose import hydra_error, load_config, one_line, register_configs
from fedunlearn.app.errors import EXIT_CONFIG, fail, file_error, guarded, to_file_only
from fedunlearn.app.errors import run_dir as job_dir
from fedunlearn.experiment.lock import RunDirBusy, lock_run_dir, release_run_dir, took_over
from fedunlearn.experiment.preflight import preflight
from fedunlearn.reporting.progress import ROUNDS_LOGGER, ProgressBars, use_bars

log = logging.getLogger("fedunlearn")
register_configs()


class RunDirLock(Callback):
    """Hydra callback (``hydra.callbacks`` in conf/config.yaml): the run directory's lock, taken before Hydra
    writes anything there (its ``.hydra/`` config, the log). A multirun locks its sweep directory, then each job's."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._lock(Path(str(OmegaConf.select(config, "hydra.run.dir"))))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._lock(Path(str(OmegaConf.select(config, "hydra.sweep.dir"))))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._lock(Path(str(config.hydra.runtime.output_dir)))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self._release(Path(str(config.hydra.runtime.output_dir)))

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release(Path(str(OmegaConf.select(config, "hydra.run.dir"))))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release(Path(str(OmegaConf.select(config, "hydra.sweep.dir"))))

    @staticmethod
    def _release(run_dir: Path) -> None:
        release_run_dir(run_dir)

    @staticmethod
    def _lock(run_dir: Path) -> None:
        try:
            lock_run_dir(run_dir)
        except RunDirBusy as err:
            fail(str(err), EXIT_CONFIG)
        except OSError as err:
            fail(f"{file_error(err)}; choose a writable hydra.run.dir", EXIT_CONFIG)
        except Exception as err:  # Hydra would turn a callback's error into a warning and run on unlocked
            fail(f"cannot lock the run directory {run_dir}: {one_line(err)}", EXIT_CONFIG)


# -- the app ----------------------------------------------------------------------------------------


@hydra.main(version_base="1.3", config_path="pkg://fedunlearn.conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    run_dir = job_dir()
    to_file_only("fedunlearn.trace", level=logging.INFO)
    to_file_only("alembic")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    def job() -> None:
        lock_run_dir(run_dir)  # held already when the callback ran (a `compose` + `main` caller may not have it)
        while took_over:
            log.warning("%s", took_over.pop(0))
        cfg = load_config(dcfg)
        if use_bars(cfg.progress, sys.stderr):  # else the round lines go where every log line goes
            to_file_only(ROUNDS_LOGGER, level=logging.INFO)
            logging.getLogger(ROUNDS_LOGGER).addHandler(ProgressBars())
        preflight(cfg, run_dir)
        log.info("run directory: %s%s", run_dir, " (resuming)" if cfg.resume else "")
        from fedunlearn.app.publish import execute  # Flower and Ray load once the config is known to be valid

        execute(cfg, dcfg, run_dir)

    guarded(job, run_dir)


HYDRA_FLAGS = ("-m", "--multirun", "-c", "--cfg", "-h", "--help", "--hydra-help", "-i", "--info", "--version",
               "-sc", "--shell-completion", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
               "-cd", "--config-dir", "--experimental-rerun")  # fmt: skip


def check_overrides(overrides: list[str]) -> None:
    """Compose the config as Hydra will, so that a bad override is one line naming its key (not Hydra's page)."""
    try:
        with initialize_config_module("fedunlearn.conf", version_base="1.3"):
            compose("config", overrides=overrides)
    except HydraException as err:
        fail(f"invalid config: {hydra_error(err, overrides)}", EXIT_CONFIG)


def cli() -> None:
    """``fedunlearn``: the Hydra app, its overrides checked first (sweeps and Hydra's own flags go straight in)."""
    args = sys.argv[1:]
    if not any(a.split("=")[0] in HYDRA_FLAGS for a in args):
        check_overrides(args)
    main()


if __name__ == "__main__":
    cli()
