"""Every failure of a run as one line on the console, what to change, and an exit code; the traceback goes to the
run's log file. The exit codes are listed in the docs (When something goes wrong)."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig

from fedunlearn.app.compose import one_line
from fedunlearn.config import ConfigError
from fedunlearn.core.federation import ClientCrashed, InexactReference, SimulationError, Stopped
from fedunlearn.experiment.checkpoint import CheckpointError, RunCheckpoint
from fedunlearn.experiment.lock import RunDirBusy, clear_pids
from fedunlearn.experiment.stages import TrainingDiverged
from fedunlearn.history.store import HistoryCorruptError
from fedunlearn.history.writer import RunFileError
from fedunlearn.reporting.progress import finish

EXIT_CONFIG = 2  # a key's value, the data, the resources or the run directory: the line names what to change
EXIT_HISTORY = 3  # a stored history file is damaged
EXIT_CLIENT = 4  # a ClientApp raised (more than fl.max_client_failures in a round)
EXIT_ENGINE = 5  # Ray or Flower's simulation engine failed
EXIT_DIVERGED = 6  # training diverged and fl.on_divergence=error
EXIT_BUG = 1  # anything else: a bug, reported with its traceback in the log


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
    finish()  # an open progress bar ends its line before the error's
    logfile = _log_file()
    if err is not None:
        logging.getLogger("fedunlearn.trace").error("%s", message, exc_info=(type(err), err, err.__traceback__))
    where = f" (log: {logfile})" if logfile is not None and err is not None else ""
    print(f"fedunlearn: {message}{where}", file=sys.stderr, flush=True)
    _exit(code)


def _exit(code: int) -> NoReturn:
    simulation = sys.modules.get("fedunlearn.flower.simulation")  # not imported: no Ray to stop (and none to load)
    if simulation is not None:
        simulation.shutdown_ray()
    clear_pids()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no thread (Flower's, Ray's) may keep the process alive


def guarded(job: Callable[[], None], run_dir: Path) -> None:
    """Run ``job``; map every failure to one line and its exit code."""
    try:
        job()
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
        fail(one_line(err), EXIT_ENGINE, err)
    except KeyboardInterrupt as err:
        fail(f"interrupted; {resume_hint(run_dir)}", 130, err)
    except OSError as err:
        if not isinstance(err, RunFileError) and not _inside(err.filename, run_dir):
            fail(f"unexpected {type(err).__name__}: {one_line(err)}", EXIT_BUG, err)
        then = resume_hint(run_dir) if RunCheckpoint.exists_in(run_dir) else "run the same command again"
        fail(f"{file_error(err)}; fix that, then {then}", EXIT_CONFIG, err)
    except Exception as err:
        fail(f"unexpected {type(err).__name__}: {one_line(err)}", EXIT_BUG, err)


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
    fail(
        f"stopped by {signal.Signals(signum).name} (forced after a grace period); {resume_hint(run_dir())}",
        128 + signum,
    )


def run_dir() -> Path:
    """The Hydra job's output directory."""
    return Path(HydraConfig.get().runtime.output_dir)
