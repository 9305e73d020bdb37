"""Durable file writes: atomic (temp file, fsync, rename), and optionally behind the round on a background thread.

fsync is the dominant cost of recording a round (about a dozen files); ``BackgroundWriter`` moves it off the
server's critical path, so that it overlaps the next round's client training. Writes land in the order they were
submitted, so a crash loses only the newest ones: what is on disk is always a prefix of what was written (a
round's files before the manifest that lists them, the manifest before the checkpoint that names the round),
which is exactly what resume relies on.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from pathlib import Path
from types import TracebackType


class RunFileError(OSError):
    """A file of the run could not be written (disk full, permissions, a read-only filesystem): what a user fixes,
    not a bug. ``filename`` is the file meant, ``strerror`` the cause."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def atomic_write(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``; RunFileError if any step
    fails (the temporary file is removed, ``path`` keeps its previous content)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RunFileError(err.errno, err.strerror or str(err), str(path)) from err


def append_line(path: Path, payload: bytes) -> None:
    """Append ``payload`` (one line) to ``path`` and fsync; RunFileError if it fails. A crash can leave a partial
    last line, which readers of an append-only log ignore."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise RunFileError(err.errno, err.strerror or str(err), str(path)) from err


class FileWriter:
    """Writes at once, in the caller's thread (the default for one-off files and for readers)."""

    def write(self, path: Path, payload: bytes) -> None:
        atomic_write(path, payload)

    def append(self, path: Path, payload: bytes) -> None:
        append_line(path, payload)

    def flush(self) -> None:
        """Return once every write submitted so far is on disk."""


class BackgroundWriter(FileWriter):
    """``atomic_write`` on one background thread, in submission order; ``flush`` before reading what was written.

    At most ``max_pending`` writes and ``max_pending_bytes`` of payload wait (the caller blocks beyond that, so a
    round of large models is not held in memory twice; one payload larger than the bound waits alone). A failed
    write is raised in the caller at its next ``write``, ``flush`` or ``close``, and no later write is attempted.
    """

    def __init__(self, max_pending: int = 256, max_pending_bytes: int = 256 * 2**20) -> None:
        self._queue: queue.Queue[tuple[Path, bytes, bool] | None] = queue.Queue(max_pending)
        self._max_bytes, self._pending_bytes = max_pending_bytes, 0
        self._room = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="fedunlearn-writer", daemon=True)
        self._thread.start()

    def write(self, path: Path, payload: bytes) -> None:
        self._submit(path, payload, False)

    def append(self, path: Path, payload: bytes) -> None:
        self._submit(path, payload, True)

    def _submit(self, path: Path, payload: bytes, append: bool) -> None:
        self._raise_error()
        with self._room:
            while self._pending_bytes and self._pending_bytes + len(payload) > self._max_bytes:
                self._room.wait()
            self._pending_bytes += len(payload)
        self._queue.put((path, payload, append))

    def flush(self) -> None:
        self._queue.join()
        self._raise_error()

    def close(self) -> None:
        """Finish the queued writes and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:  # land what was queued before the error, but report the run's own error, not a write's
            with contextlib.suppress(Exception):
                self.close()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    path, payload, append = item
                    if append:
                        append_line(path, payload)
                    else:
                        atomic_write(path, payload)
            except BaseException as err:  # handed to the caller's thread
                self._error = err
            finally:
                if item is not None:
                    with self._room:
                        self._pending_bytes -= len(item[1])
                        self._room.notify_all()
                self._queue.task_done()

    def _raise_error(self) -> None:
        if isinstance(self._error, OSError):
            raise RunFileError(self._error.errno, self._error.strerror, self._error.filename) from self._error
        if self._error is not None:
            raise RuntimeError(f"writing the run's files failed: {self._error}") from self._error
