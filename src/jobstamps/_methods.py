"""
How jobstamps decides whether a file changed: the built-in methods.

A method remembers a *fingerprint* of every dependency before the job runs,
and later checks the file against it. :class:`MTimeMethod` compares stat
signatures, :class:`HashMethod` compares contents. Both record the same
fingerprint shape, so a stamp written under one is reused under the other
when nothing changed. This module knows files and their fingerprints, not
stamps: how fingerprints are stored and compared against a call's list of
dependencies is :mod:`._freshness`'s.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time

from ._fs import sha256_fd
from ._fs import sha256_file as file_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    # typing costs 3.9 ms or more to import (fresh processes), about a fifth
    # of the empty console script a cached `jobstamp` run is held to (1.5x,
    # scenario 7 of benchmarks/run.py): the Method protocol lives in
    # ._protocol, for type checkers and for isinstance().
    from typing import TypeAlias

    from ._protocol import Method

Fingerprint: TypeAlias = "tuple[int, int, str | None, int]"
"""
``(mtime_ns, size, digest, taken_ns)`` of one dependency: its stat signature,
a content digest or ``None``, and when the fingerprint was taken.
"""

# How close to the moment it was fingerprinted a file's mtime may be before
# an unchanged stat no longer proves unchanged content: a second write within
# the same timestamp tick keeps mtime (and maybe size). This is git's
# "racily clean" rule. File times come from the kernel's coarse clock, a few
# milliseconds behind time.time_ns(); filesystems that store whole seconds
# (or FAT's two) need the wider window.
_RACY_NS = 100_000_000
_RACY_WHOLE_SECONDS_NS = 2_000_000_000

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class MTimeMethod:
    """
    A dependency changed when its stat signature (mtime in ns, size) did.

    Cheap (one ``stat`` per file) but fooled by a copy or checkout that
    rewrites a file with the same contents, which then counts as a change.
    """

    __slots__ = ()

    def fingerprint(self, path: str, stat: os.stat_result) -> Fingerprint:
        return (stat.st_mtime_ns, stat.st_size, None, time.time_ns())

    def check(
        self, path: str, stat: os.stat_result, recorded: Fingerprint
    ) -> Fingerprint | None:
        if stat.st_mtime_ns == recorded[0] and stat.st_size == recorded[1]:
            return recorded
        return None

    def __repr__(self) -> str:
        return "MTimeMethod()"


class HashMethod:
    """
    A dependency changed when its contents did (SHA-256).

    A file touched, copied or checked out again with identical contents is not
    a change. A file whose stat signature is unchanged since it was hashed is
    not read again, unless it was modified so close to that moment that the
    stat can't be trusted.
    """

    __slots__ = ()

    def fingerprint(self, path: str, stat: os.stat_result) -> Fingerprint:
        digest = file_digest(path, stat.st_size)
        return (stat.st_mtime_ns, stat.st_size, digest, time.time_ns())

    def check(
        self, path: str, stat: os.stat_result, recorded: Fingerprint
    ) -> Fingerprint | None:
        mtime_ns, size, digest, taken_ns = recorded
        same_stat = stat.st_mtime_ns == mtime_ns and stat.st_size == size
        if same_stat and not _racy(mtime_ns, taken_ns):
            return recorded
        if digest is None or (not same_stat and stat.st_size != size):
            return None
        if file_digest(path) != digest:
            return None
        now = time.time_ns()
        if _racy(stat.st_mtime_ns, now):
            return recorded  # still too fresh to trust; check again next time
        return (stat.st_mtime_ns, stat.st_size, digest, now)

    def __repr__(self) -> str:
        return "HashMethod()"


def _racy(mtime_ns: int, taken_ns: int) -> bool:
    """
    Whether a stat signature with *mtime_ns*, taken at *taken_ns*, is too
    recent to prove that the file's content is the one hashed then.
    """
    window = _RACY_WHOLE_SECONDS_NS if mtime_ns % 1_000_000_000 == 0 else _RACY_NS
    return mtime_ns >= taken_ns - window


def hash_fingerprint(path: str) -> Fingerprint:
    """
    ``HashMethod().fingerprint(path, os.stat(path))``, with the stat taken
    through the open file: one open, one fstat, one read for a small file.

    Raises:
        IsADirectoryError: *path* is a directory.
        OSError: it can't be opened or read.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        stat = os.fstat(fd)
        if stat_module.S_ISDIR(stat.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        digest = sha256_fd(fd, stat.st_size)
    finally:
        os.close(fd)
    return (stat.st_mtime_ns, stat.st_size, digest, time.time_ns())


def stat_dependency(path: str) -> os.stat_result | None:
    """
    ``os.stat(path)``, or None if there is no such file.

    Raises:
        IsADirectoryError: *path* is a directory, which can't be a dependency.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat_module.S_ISDIR(st.st_mode):
        raise IsADirectoryError(
            errno.EISDIR,
            "jobstamps dependencies must be files, and this is a directory; "
            "list the files in it instead",
            path,
        )
    return st


def fingerprint(path: str, method: Method) -> Fingerprint | None:
    """
    *method*'s fingerprint of the dependency at *path*, or None if it is
    missing.

    Raises:
        IsADirectoryError: *path* is a directory.
    """
    if type(method) is HashMethod:
        # Opened once: stat'ed through the descriptor, then read.
        try:
            return hash_fingerprint(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            pass  # a directory, say: the general path below says why
    st = stat_dependency(path)
    return None if st is None else method.fingerprint(path, st)


def resolve(method: object) -> Method:
    """
    An instance of *method*: a :class:`Method` class or instance.

    Raises:
        TypeError: *method* does not satisfy the :class:`Method` protocol.
    """
    if isinstance(method, type):
        cls = method
        try:
            method = cls()
        except TypeError as e:
            raise TypeError(
                f"jobstamps: method={cls.__qualname__} must be constructible "
                f"without arguments, or pass an instance: {e}"
            ) from None
    for name in ("fingerprint", "check"):
        if not callable(getattr(method, name, None)):
            raise TypeError(
                f"jobstamps: method={method!r} is not a jobstamps Method: it has "
                f"no {name}() method (use MTimeMethod, HashMethod, or an object "
                "with fingerprint() and check())"
            )
    return method  # type: ignore[return-value]
