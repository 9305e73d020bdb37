"""The console: a progress bar per phase on a terminal, every round line in the log file (a whole run's console:
tests/test_e2e.py::test_showcase_through_flower)."""

from __future__ import annotations

import io
import logging

import pytest

from fedunlearn.reporting.progress import ProgressBars


def record(phase: str, done: int, total: int) -> logging.LogRecord:
    rec = logging.LogRecord("fedunlearn.rounds", logging.INFO, __file__, 0, "round", (), None)
    rec.__dict__.update(phase=phase, done=done, total=total)
    return rec


def test_one_line_per_phase_however_many_rounds() -> None:
    out = io.StringIO()
    bars = ProgressBars(out)
    for r in range(1, 101):
        bars.emit(record("train", r, 100))
    for r in range(101, 104):  # a recovery that stops before its cap (105)
        bars.emit(record("kd_recover-recovery", r, 105))
    bars.emit(record("federaser", 1, 50))
    bars.close()
    lines = out.getvalue().split("\n")
    finished = [line.rsplit("\r", 1)[-1] for line in lines if line.strip()]
    assert len(finished) == 3
    assert finished[0].startswith("train: 100%") and "100/100" in finished[0]
    assert finished[1].startswith("kd_recover-recovery") and "103/105" in finished[1]
    assert finished[2].startswith("federaser") and "1/50" in finished[2]


def test_records_without_progress_fields_are_ignored() -> None:
    out = io.StringIO()
    ProgressBars(out).emit(logging.LogRecord("x", logging.INFO, __file__, 0, "plain", (), None))
    assert out.getvalue() == ""


def test_many_server_epochs_log_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """kd_recover's 100 distillation epochs: one INFO line when they end, not 100 "round" lines."""
    import logging

    from fedunlearn.core.fedavg import RoundLog

    log = RoundLog()
    with caplog.at_level(logging.INFO, logger="fedunlearn.rounds"):
        for epoch in range(1, 101):
            log.add("kd_recover-distill", epoch, 100, None, None, 0.01, [], unit="epoch")
        for epoch in range(1, 3):  # a few epochs (PGA's ascent): each is shown
            log.add("pga-ascent", epoch, 5, None, None, 0.01, [], unit="epoch")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines[0] == "[kd_recover-distill] 100/100 epochs on the server  1.00s"
    assert len([line for line in lines if "kd_recover-distill" in line]) == 1
    assert len([line for line in lines if "pga-ascent" in line]) == 2 and "round" not in " ".join(lines)
