"""One exclusive file lock for every writer of an output folder (streaming featurization, benchmark results).

A POSIX advisory ``flock`` on a small file: the kernel releases it when the holder dies (even by SIGKILL), so a
killed run never leaves a stale lock behind. The holder's pid is written into the file, so that a refused
process can say who holds it. Where ``fcntl`` is missing (Windows) locking is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeldError(RuntimeError):
    """Another process holds the lock (raised only when not waiting for it).

    Attributes:
        holder: the holder's pid as written in the lock file (``"?"`` when unreadable).
    """

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by process {holder}")
        self.path = path
        self.holder = holder


@contextmanager
def exclusive_lock(path: str | Path, wait: bool = True, remove: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    Args:
        path: the lock file; its folder must exist.
        wait: block until the lock is free (``True``), or raise at once if it is held (``False``).
        remove: delete the lock file when the block ends (while still holding it). A process that opened the
            file before it was deleted and then locked it notices that the path no longer names the file it
            locked and starts over, so two holders never coexist.

    Raises:
        LockHeldError: ``wait=False`` and another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LockHeldError(path, holder) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if remove:
            path.unlink(missing_ok=True)
        os.close(fd)  # closing the descriptor releases the lock
