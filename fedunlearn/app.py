"""The ``fedunlearn`` command: a Hydra app (config in ``conf/``; sweeps with ``-m``).

``main`` composes and validates the config once, checks what can be checked before Ray starts, runs the
experiment in Flower's simulation engine and reports. Anything that goes wrong ends the run with one line on the
console — what failed and what to change — a non-zero exit code, and the traceback in the run's log file.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedunlearn.config import Config, ConfigError, Rule, validate

if TYPE_CHECKING:
    from fedunlearn.reporting.results import RunResult

log = logging.getLogger("fedunlearn")

# Exit codes (README → When something goes wrong).
EXIT_CONFIG = 2  # a key's value, the data, the resources or the run directory: the line names what to change
EXIT_HISTORY = 3  # a stored history file is damaged
EXIT_CLIENT = 4  # a ClientApp raised (more than fl.max_client_failures in a round)
EXIT_ENGINE = 5  # Ray or Flower's simulation engine failed
EXIT_DIVERGED = 6  # training diverged and fl.on_divergence=error
EXIT_BUG = 1  # anything else: a bug, reported with its traceback in the log


def register_configs() -> None:
    """Register every unlearning method and the schema ``conf/config.yaml`` extends as ``base_config``."""
    from fedunlearn.unlearning.registry import discover, schema_with_defaults

    discover()
    ConfigStore.instance().store(name="base_config", node=schema_with_defaults())


register_configs()


def _method_rule(name: str) -> Rule:
    from fedunlearn.unlearning import create

    return lambda cfg, methods: create(name, cfg).validate(cfg)


def load_config(dcfg: DictConfig) -> Config:
    """The typed, validated config; raises ConfigError naming the bad key."""
    from fedunlearn.unlearning import registered

    try:
        cfg = cast(Config, OmegaConf.to_object(dcfg))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(str(key), str(err).splitlines()[0]) from None
    _no_unknown_keys(dcfg, cfg)
    validate(cfg, registered(), _method_rule)
    return cfg


def _no_unknown_keys(node: Any, typed: Any, prefix: str = "") -> None:
    """A key added with ``+key=value`` that the schema does not have is an error, not silently dropped."""
    import dataclasses

    if not isinstance(node, DictConfig) or not dataclasses.is_dataclass(typed):
        return
    fields = {f.name for f in dataclasses.fields(typed)}
    for key in map(str, node):
        if key not in fields and key != "hydra":
            raise ConfigError(f"{prefix}{key}", "no such key (`fedunlearn --cfg job` prints every key)")
        _no_unknown_keys(node[key], getattr(typed, key), f"{prefix}{key}.")


def compose(overrides: list[str]) -> DictConfig:
    """The config ``fedunlearn <overrides>`` composes, before typing and validation."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    register_configs()  # methods registered since import (e.g. a plugin imported by a notebook) join the schema
    with initialize_config_module("fedunlearn.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def compose_config(overrides: list[str]) -> Config:
    """The validated config that ``fedunlearn <overrides>`` would run with (for tests, benchmarks, notebooks)."""
    return load_config(compose(overrides))


def container(dcfg: DictConfig) -> dict[str, Any]:
    """The resolved config as results.json's ``config`` holds it."""
    return cast(dict[str, Any], OmegaConf.to_container(dcfg, resolve=True))


def config_container(overrides: list[str]) -> dict[str, Any]:
    """``fedunlearn <overrides>``'s resolved config, as results.json's ``config`` holds it."""
    return container(compose(overrides))


# -- errors ------------------------------------------------------------------------------------------


def _log_file() -> Path | None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


class RunLogHandler(logging.FileHandler):
    """The run's log file. When the file cannot be written (disk full, a read-only filesystem) it stops writing
    instead of printing a traceback per log record: the run's own writes fail on the same cause and end the run
    with the one line that names it; what the log holds up to then stays as it was."""

    failed: OSError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            self.failed = err
            return
        super().handleError(record)


def to_file_only(*names: str, level: int = logging.WARNING) -> None:
    """Send these loggers, from ``level`` up, to the run's log file only (Flower and Ray talk at length; the console
    stays readable). Each gets a handler of its own: Ray re-formats the handlers of its logger."""
    path = _log_file()
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers = []
        if path is not None:
            handler = RunLogHandler(path)
            handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
            logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(level)


def fail(message: str, code: int, err: BaseException | None = None) -> NoReturn:
    """One line on stderr, the traceback (if any) in the log file, Ray shut down, exit ``code``."""
    from fedunlearn.reporting.progress import finish

    finish()  # an open progress bar ends its line before the error's
    logfile = _log_file()
    if err is not None:
        logging.getLogger("fedunlearn.trace").error("%s", message, exc_info=(type(err), err, err.__traceback__))
    where = f" (log: {logfile})" if logfile is not None and err is not None else ""
    print(f"fedunlearn: {message}{where}", file=sys.stderr, flush=True)
    _exit(code)


def _exit(code: int) -> NoReturn:
    from fedunlearn.experiment.lock import clear_pids

    simulation = sys.modules.get("fedunlearn.fl.simulation")  # not imported: no Ray was started
    if simulation is not None:
        simulation.shutdown_ray()
    clear_pids()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no thread (Flower's, Ray's) may keep the process alive


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def guarded(run: Callable[[], None], run_dir: Path) -> None:
    """Run ``run``; map every failure to one line and its exit code."""
    from fedunlearn.experiment.checkpoint import CheckpointError, RunCheckpoint
    from fedunlearn.experiment.lock import RunDirBusy
    from fedunlearn.experiment.stages import TrainingDiverged
    from fedunlearn.fl.federation import ClientCrashed, InexactReference
    from fedunlearn.fl.simulation import SimulationError, Stopped
    from fedunlearn.history.store import HistoryCorruptError
    from fedunlearn.history.writer import RunFileError

    try:
        run()
    except ConfigError as err:
        fail(f"invalid config: {err}", EXIT_CONFIG)
    except RunDirBusy as err:
        fail(str(err), EXIT_CONFIG)
    except CheckpointError as err:
        fail(f"cannot resume: {err}", EXIT_CONFIG)
    except HistoryCorruptError as err:
        fail(str(err), EXIT_HISTORY)
    except InexactReference as err:
        fail(
            f"{err}; retrain and rollback are the exact reference every method is measured against and would miss "
            "this client's update: fix the client, or tolerate it (results then say exact: false): "
            f"{resume_hint(run_dir, 'fl.exact_reference=false')}",
            EXIT_CLIENT,
            err,
        )
    except ClientCrashed as err:
        fail(f"{err}; fl.max_client_failures=N tolerates N failed clients per round", EXIT_CLIENT, err)
    except TrainingDiverged as err:
        fail(str(err), EXIT_DIVERGED, err)
    except Stopped as err:
        fail(f"{err}; the checkpoint is consistent: {resume_hint(run_dir)}", 128 + err.signum)
    except SimulationError as err:
        fail(_one_line(err), EXIT_ENGINE, err)
    except KeyboardInterrupt as err:
        fail(f"interrupted; {resume_hint(run_dir)}", 130, err)
    except OSError as err:
        if not isinstance(err, RunFileError) and not _inside(err.filename, run_dir):
            fail(f"unexpected {type(err).__name__}: {_one_line(err)}", EXIT_BUG, err)
        then = resume_hint(run_dir) if RunCheckpoint.exists_in(run_dir) else "run the same command again"
        fail(f"{file_error(err)}; fix that, then {then}", EXIT_CONFIG, err)
    except Exception as err:
        fail(f"unexpected {type(err).__name__}: {_one_line(err)}", EXIT_BUG, err)


def _inside(filename: Any, run_dir: Path) -> bool:
    """Whether ``filename`` (an OSError's) is a file of the run directory."""
    if not isinstance(filename, str | os.PathLike):
        return False
    return Path(filename).resolve().is_relative_to(run_dir.resolve())


def file_error(err: OSError) -> str:
    """An OSError about a file, as one line: the file and the cause (disk full, permission, read-only, ...)."""
    return f"cannot {'write' if err.errno in WRITE_ERRNOS else 'use'} {err.filename}: {err.strerror or err}"


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def resume_hint(run_dir: Path, *changed: str) -> str:
    """The command that resumes this run (with ``changed`` overrides, keys that may change on resume)."""
    keys = tuple(c.split("=")[0] + "=" for c in changed)
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(("resume=", "hydra.run.dir=", *keys))]
    return f"continue with `fedunlearn {' '.join([*overrides, *changed, f'hydra.run.dir={run_dir}', 'resume=true'])}`"


def on_watchdog(signum: int) -> None:
    """The run did not stop in time after a signal: end the process (the checkpoint is as safe as after kill -9)."""
    import signal

    fail(
        f"stopped by {signal.Signals(signum).name} (forced after a grace period); {resume_hint(_run_dir())}",
        128 + signum,
    )


def _run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


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
        from fedunlearn.experiment.lock import release_run_dir

        release_run_dir(run_dir)

    @staticmethod
    def _lock(run_dir: Path) -> None:
        from fedunlearn.experiment.lock import RunDirBusy, lock_run_dir

        try:
            lock_run_dir(run_dir)
        except RunDirBusy as err:
            fail(str(err), EXIT_CONFIG)
        except OSError as err:
            fail(f"{file_error(err)}; choose a writable hydra.run.dir", EXIT_CONFIG)
        except Exception as err:  # Hydra would turn a callback's error into a warning and run on unlocked
            fail(f"cannot lock the run directory {run_dir}: {_one_line(err)}", EXIT_CONFIG)


# -- the app -----------------------------------------------------------------------------------------


@hydra.main(version_base="1.3", config_path="pkg://fedunlearn.conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    run_dir = _run_dir()
    to_file_only("fedunlearn.trace", level=logging.INFO)
    to_file_only("alembic")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    def run() -> None:
        from fedunlearn.experiment.lock import lock_run_dir, took_over
        from fedunlearn.experiment.preflight import preflight
        from fedunlearn.reporting.progress import ROUNDS_LOGGER, ProgressBars, use_bars

        lock_run_dir(run_dir)  # held already when the callback ran (a `compose` + `main` caller may not have it)
        while took_over:
            log.warning("%s", took_over.pop(0))
        cfg = load_config(dcfg)
        if use_bars(cfg.progress, sys.stderr):  # else the round lines go where every log line goes
            to_file_only(ROUNDS_LOGGER, level=logging.INFO)
            logging.getLogger(ROUNDS_LOGGER).addHandler(ProgressBars())
        preflight(cfg, run_dir)
        log.info("run directory: %s%s", run_dir, " (resuming)" if cfg.resume else "")
        execute(cfg, dcfg, run_dir)

    guarded(run, run_dir)


def execute(cfg: Config, dcfg: DictConfig, run_dir: Path) -> None:
    """Run the experiment through Flower's simulation engine, then write and print its report."""
    from fedunlearn.data import federated_data
    from fedunlearn.experiment.stages import run_experiment
    from fedunlearn.fl.client_app import make_client_app
    from fedunlearn.fl.simulation import simulate
    from fedunlearn.fl.task import TaskConfig
    from fedunlearn.reporting.progress import finish

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
    import dataclasses

    from fedunlearn.reporting.report import report
    from fedunlearn.reporting.tracking import track

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


# -- the command line ---------------------------------------------------------------------------------

HYDRA_FLAGS = ("-m", "--multirun", "-c", "--cfg", "-h", "--help", "--hydra-help", "-i", "--info", "--version",
               "-sc", "--shell-completion", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name",
               "-cd", "--config-dir", "--experimental-rerun")  # fmt: skip


def hydra_error(err: Exception, overrides: list[str]) -> ConfigError:
    """One ConfigError, naming the key, for an error Hydra raised while composing the config."""
    import re

    cause = err.__cause__
    key = getattr(cause, "full_key", None)
    if key and type(cause).__name__ == "ConfigAttributeError":
        return ConfigError(str(key), "no such key (`fedunlearn --cfg job` prints every key)")
    if key:
        return ConfigError(str(key), _one_line(cause) if cause is not None else _one_line(err))
    text = str(err)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        available = re.search(rf"Available options in '{re.escape(group)}':\n(.*?)(\n\S|\Z)", text, re.S)
        options = ", ".join(available.group(1).split()) if available else "see conf/" + group
        return ConfigError(group, f"no option {option!r}; available: {options}")
    culprit = next((o for o in overrides if o in text or o.split("=")[0] in text), overrides[0] if overrides else "")
    return ConfigError(culprit.split("=")[0].lstrip("+~") or "overrides", _one_line(err))


def check_overrides(overrides: list[str]) -> None:
    """Compose the config as Hydra will, so that a bad override is one line naming its key (not Hydra's page)."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

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
