"""
One run per stamp: :class:`StampLock`, and locks that survive ``fork``.

A job that missed runs under the lock of its stamp, so that threads and
processes that miss the same stamp at once run it once; the others wait, then
find its stamp. Reading a stamp takes no lock. This module knows lock files
beside stamp paths, nothing of what a stamp holds.
"""

from __future__ import annotations

# _thread, not threading: threading costs 1.3 ms or more to import (fresh
# processes), which a cached `jobstamp` run (scenario 7 of benchmarks/run.py,
# 1.5x an empty console script) can't spare; its Lock is _thread's.
import _thread
import os

from . import _log
from ._fs import quietly

LOCK_SUFFIX = ".lock"


class _KeyLock:
    __slots__ = ("lock", "owner", "users")

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.users = 0
        self.owner: object = None  # the thread (or task) holding the lock


# Per-stamp locks of this process, dropped when no thread uses them.
_thread_locks: dict[str, _KeyLock] = {}
_thread_locks_guard = _thread.allocate_lock()
# File descriptors that hold an flock, closed in forked children: a child
# must not keep its parent's lock alive, nor release it.
_held: set[int] = set()


def _after_fork_in_child() -> None:
    global _thread_locks_guard
    _thread_locks_guard = _thread.allocate_lock()
    _thread_locks.clear()
    for fd in _held:
        quietly(os.close, fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class StampLock:
    """
    Exclusive right to run the job stamped at *path*, for one caller at a time.

    Use it as a context manager around re-checking the stamp and running:
    it excludes other threads of this process and other processes on this
    machine that lock the same *path*. A lock that can't be taken (a
    read-only folder, no ``flock``) degrades to running unlocked.

    Across processes this is ``flock`` on ``<stamp>.lock``: the kernel drops
    it when its holder exits or is killed, so a waiter takes over and never
    waits for a dead process. ``flock`` belongs to an open file, not to a
    thread, so threads of one process first queue on an in-process lock.
    The holder removes the lock file before releasing it; a waiter that then
    gets the lock of a removed file notices and locks the new one. A thread
    that holds a stamp's lock and asks for it again gets it at once.

    With *blocking* false nobody waits: if another caller holds the lock,
    :attr:`acquired` is false inside the ``with`` block, and nothing is held.

    *owner*, when given, holds the lock instead of the current thread: an
    asyncio task, whose lock is taken in another thread and released in its
    own, and which may ask for it again while another task of the same
    thread waits.
    """

    __slots__ = (
        "_blocking",
        "_entry",
        "_fd",
        "_lock_path",
        "_nested",
        "_owner",
        "_path",
        "_pid",
        "acquired",
    )

    def __init__(
        self, path: str, owner: object = None, *, blocking: bool = True
    ) -> None:
        self._owner = owner
        self._path = path
        self._blocking = blocking
        self.acquired = True
        self._lock_path = path + LOCK_SUFFIX
        self._fd: int | None = None
        self._pid = 0
        self._entry: _KeyLock | None = None
        self._nested = False

    def __enter__(self) -> StampLock:
        me = _thread.get_ident() if self._owner is None else self._owner
        with _thread_locks_guard:
            entry = _thread_locks.get(self._path)
            if entry is None:
                entry = _thread_locks[self._path] = _KeyLock()
            elif entry.owner == me:
                # This thread holds the stamp already (a job whose run asks
                # for its own stamp): waiting for itself would never end.
                self._nested = True
                return self
            entry.users += 1
        self._entry = entry
        lock = entry.lock
        try:
            if not lock.acquire(self._blocking):
                self._leave()
                self.acquired = False
                return self
        except BaseException:
            self._leave()
            raise
        entry.owner = me
        try:
            self._pid = os.getpid()
            self._fd = _flock(self._lock_path, self._blocking)
        except BlockingIOError:
            entry.owner = None
            lock.release()
            self._leave()
            self.acquired = False
            return self
        except BaseException:
            entry.owner = None
            lock.release()
            self._leave()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._nested:
            self._nested = False
            return
        fd = self._fd
        self._fd = None
        if fd is not None and self._pid == os.getpid():
            _held.discard(fd)
            quietly(os.unlink, self._lock_path)
            os.close(fd)  # releases the flock
        if self._pid == os.getpid() and self._entry is not None:
            self._entry.owner = None
            self._entry.lock.release()
            self._leave()

    def _leave(self) -> None:
        entry = self._entry
        self._entry = None
        if entry is None:
            return
        with _thread_locks_guard:
            entry.users -= 1
            if entry.users == 0 and _thread_locks.get(self._path) is entry:
                del _thread_locks[self._path]


def _flock(lock_path: str, blocking: bool = True) -> int | None:
    """
    A descriptor of *lock_path* holding an exclusive ``flock``, or None if
    locking is not possible there.

    Raises:
        BlockingIOError: *blocking* is false and another caller holds it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            _log.debug("running without a lock, can't open %s: %s", lock_path, e)
            return None
        try:
            fcntl.flock(
                fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
            )
            mine = os.fstat(fd)
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                current = None
        except BlockingIOError:  # only without blocking: someone holds it
            os.close(fd)
            raise
        except OSError as e:
            os.close(fd)
            _log.debug("running without a lock, can't lock %s: %s", lock_path, e)
            return None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_ino, current.st_dev) == (
            mine.st_ino,
            mine.st_dev,
        ):
            _held.add(fd)
            return fd
        os.close(fd)  # its holder removed it after we opened it: start over
