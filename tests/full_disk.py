"""``python tests/full_disk.py PATTERN <fedunlearn arguments>``: the ``fedunlearn`` command on a disk that is full for
every file whose path contains PATTERN: fsync fails with ENOSPC, as a full filesystem reports a write that did not
fit. Only this process's writes fail (Ray's processes write nothing of the run)."""

import errno
import os
import sys

pattern = sys.argv[1]
real_fsync = os.fsync


def fsync(fd: int) -> None:
    if pattern in os.readlink(f"/proc/self/fd/{fd}"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_fsync(fd)


os.fsync = fsync
sys.argv = ["fedunlearn", *sys.argv[2:]]

from fedunlearn.app.cli import cli  # noqa: E402

cli()
