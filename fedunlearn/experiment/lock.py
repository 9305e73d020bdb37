"""One run per directory: an exclusive ``flock`` on ``<run dir>/.fedunlearn.lock``, held for the life of the process.

The lock is taken before anything is written into the directory (by a Hydra callback, before Hydra saves the
run's config and opens its log). The kernel releases it when the holder exits, however it exits, so a lock is
never left behind by a killed run; the file keeps the PID of its last holder, which is what a refused run names
and what a run that takes over after a crash reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import psutil

LOCK_FILE = ".fedunlearn.lock"
_held: dict[Path, int] = {}  # run directory (resolved) → the open lock file's descriptor
took_over: list[str] = []  # what lock_run_dir noted of stale locks, for the run's log


class RunDirBusy(RuntimeError):
    """Another live process holds the run directory's lock."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        holder = f"PID {pid}" if pid else "a process that did not record its PID"
        super().__init__(
            f"{run_dir} is in use by another fedunlearn run ({holder}); wait for it to end, or choose another "
            "hydra.run.dir"
        )
        self.pid = pid


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _held_elsewhere(folder: Path) -> int | None:
    """Whether another process holds ``folder``'s lock (its PID, or 0 if it recorded none); None if free."""
    path = folder / LOCK_FILE
    if not path.is_file() or folder in _held:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _recorded_pid(fd) or 0
    finally:
        os.close(fd)  # (closing releases the probe's shared lock)
    return None


def lock_run_dir(run_dir: Path) -> str | None:
    """Take ``run_dir``'s lock (creating the directory) for the rest of this process, or raise RunDirBusy — also when
    a folder above it is locked by another process (a job directory of a live multirun's sweep).

    Returns a line to log when the lock was taken over from a holder that died without releasing it (killed,
    crashed); None otherwise, and when this process holds it already. OSError names the lock file."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return None
    for folder in run_dir.parents:
        pid = _held_elsewhere(folder)
        if pid is not None:
            raise RunDirBusy(folder, pid or None)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _recorded_pid(fd)
        os.close(fd)
        raise RunDirBusy(run_dir, pid) from None
    previous = _recorded_pid(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as err:
        os.close(fd)
        raise OSError(err.errno, err.strerror, str(path)) from err
    _held[run_dir] = fd
    if previous is None or previous == os.getpid():
        return None
    state = "is no longer running" if not psutil.pid_exists(previous) else "no longer held it"
    note = f"took over the lock of {run_dir} from PID {previous}, which {state} (a killed or crashed run)"
    took_over.append(note)
    return note


def release_run_dir(run_dir: Path) -> None:
    """Give ``run_dir``'s lock back, the PID cleared (a later run then has nothing to take over)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


def clear_pids() -> None:
    """Clear the PID of every lock this process holds, keeping the locks: for a process about to exit (the kernel
    releases them then), so that no other run takes a directory while this one may still be writing to it."""
    for fd in _held.values():
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
