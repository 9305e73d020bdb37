"""``python -m fedunlearn.flower.reaper``: ends the Ray processes of a run whose driver was killed (``kill -9``).

Ray's GCS and raylet share the driver's fate, but the agents the raylet starts (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``) are orphaned and live on. The driver starts this process in its own session with a
pipe on stdin; while the driver lives, the reaper notes the driver's descendants every half second; when the
pipe closes (the driver exited, however it died) it kills those still alive. A driver that shut Ray down
normally leaves nothing to kill.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

import psutil


def start() -> subprocess.Popen[bytes]:
    """Start the reaper for this process; it lives as long as the returned process's stdin stays open."""
    return subprocess.Popen(
        [sys.executable, "-m", "fedunlearn.flower.reaper", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def main(driver_pid: int) -> None:
    me = os.getpid()
    seen: dict[int, float] = {}  # pid → create time (so a reused pid is never killed)
    closed = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        closed.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        driver = psutil.Process(driver_pid)
    except psutil.Error:
        return
    while not closed.wait(0.5) and driver.is_running():
        try:
            children = driver.children(recursive=True)
        except psutil.Error:  # a child vanished while being listed: look again next time
            continue
        for child in children:
            with contextlib.suppress(psutil.Error):
                if child.pid != me:
                    seen[child.pid] = child.create_time()
    time.sleep(1.0)  # Ray's own fate-sharing goes first
    for pid, created in seen.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                proc.kill()


if __name__ == "__main__":
    main(int(sys.argv[1]))
