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
            self.end_bar()
            self.phase = str(phase)
            self.bar = tqdm(
                total=int(total), initial=int(done) - 1, desc=self.phase, unit=str(getattr(record, "unit", "round")),
                file=self.stream, leave=True, dynamic_ncols=True, mininterval=0.2,
            )  # fmt: skip
        self.bar.update(int(done) - self.bar.n)
        if done >= total:
            self.end_bar()

    def end_bar(self) -> None:
        """Close the open bar (its line stays); the next record starts a new one."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.phase = None

    def close(self) -> None:
        self.end_bar()
        super().close()


def use_bars(mode: str, stream: TextIO) -> bool:
    """Whether ``progress: mode`` draws bars on ``stream`` (auto: only on a terminal)."""
    return mode == "bars" or (mode == "auto" and stream.isatty())


def finish() -> None:
    """End an open bar (a phase that stopped before its cap) before the summary or an error line is printed."""
    for handler in logging.getLogger(ROUNDS_LOGGER).handlers:
        if isinstance(handler, ProgressBars):
            handler.end_bar()
