"""The console during a run: one progress bar per phase (training, each method's steps and recovery rounds) with
rounds done, rate and time left; every round's line still goes to the run's log file.

``progress: auto`` draws bars when stderr is a terminal and prints the round lines otherwise (logs of batch jobs
stay greppable); ``bars`` and ``lines`` force either. The round lines come from one logger, ``fedunlearn.rounds``,
whose records carry ``phase``, ``done`` and ``total``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

ROUNDS_LOGGER = "fedunlearn.rounds"


class ProgressBars(logging.Handler):
    """Turns round records into a tqdm bar per phase; a new phase closes the previous bar."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(logging.INFO)
        self.stream = stream if stream is not None else sys.stderr
        self.phase: str | None = None
        self.bar: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        phase, done, total = (getattr(record, k, None) for k in ("phase", "done", "total"))
        if phase is None or done is None or total is None:
            return
        if phase != self.phase or self.bar is None or done <= self.bar.n:
            self.close()
            self.phase = str(phase)
            self.bar = tqdm(
                total=int(total), initial=int(done) - 1, desc=self.phase, unit=str(getattr(record, "unit", "round")),
                file=self.stream, leave=True, dynamic_ncols=True, mininterval=0.2,
            )  # fmt: skip
        self.bar.update(int(done) - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.phase = None
        super().close()


def use_bars(mode: str, stream: TextIO) -> bool:
    return mode == "bars" or (mode == "auto" and stream.isatty())


def route_rounds(mode: str, log_file: str | None) -> ProgressBars | None:
    """Send ``fedunlearn.rounds`` to the log file, and to the console as bars or as lines (``mode``)."""
    logger = logging.getLogger(ROUNDS_LOGGER)
    if not use_bars(mode, sys.stderr):
        return None  # lines: the root logger's console and file handlers print them, as any log line
    logger.handlers = []
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        logger.addHandler(handler)
    bars = ProgressBars()
    logger.addHandler(bars)
    return bars


def finish() -> None:
    """Close an open bar (a phase that stopped before its cap) before the summary is printed."""
    for handler in logging.getLogger(ROUNDS_LOGGER).handlers:
        if isinstance(handler, ProgressBars) and handler.bar is not None:
            handler.bar.close()
            handler.bar, handler.phase = None, None
