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
    from ._protocol import Fingerprint, Method

# How close to the moment it was fingerprinted a file's mtime (or ctime) may
# be before an unchanged stat no longer proves unchanged content: a second
# write within the same timestamp tick keeps both times (and maybe the size).
# This is git's "racily clean" rule. File times come from the kernel's coarse
# clock, a few milliseconds behind time.time_ns(); filesystems that store
# whole seconds (or FAT's two) need the wider window.
_RACY_NS = 100_000_000
_RACY_WHOLE_SECONDS_NS = 2_000_000_000

# O_NONBLOCK: should a dependency become a FIFO between its stat and its
# open, the open returns at once instead of waiting for a writer.
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


class MTimeMethod:
    """
    A dependency changed when its stat signature did: modification and
    change times (ns), inode and size.

    Cheap (one ``stat`` per file) but fooled by a copy or checkout that
    rewrites a file with the same contents, which then counts as a change.
    A file modified so shortly before it was fingerprinted that a second
    write could keep its stat signature is also hashed, and is checked by
    content until it is old enough to trust.
    """

    __slots__ = ()

    def fingerprint(self, path: str, stat: os.stat_result) -> Fingerprint:
        taken_ns = time.time_ns()
        digest = None
        # Only racy files are read: fingerprinting 1,000 files of 4 KiB takes
        # 8 ms when none is racy, 17 to 22 ms when all are (as HashMethod).
        if _racy_stat(stat, taken_ns):
            try:
                digest = file_digest(path, stat.st_size)
            except OSError:
                pass  # unreadable: a racy file without a digest counts as changed
        return _of(stat, digest, taken_ns)

    def check(
        self, path: str, stat: os.stat_result, recorded: Fingerprint
    ) -> Fingerprint | None:
        if not same_stat(stat, recorded):
            return None
        if not racy(recorded):
            return recorded
        digest = recorded[2]
        if digest is None:
            return None  # racily clean and nothing to prove it by
        try:
            if file_digest(path, stat.st_size) != digest:
                return None
        except OSError:
            return None
        now = time.time_ns()
        if _racy_stat(stat, now):
            return recorded  # still too fresh to trust; check again next time
        return _of(stat, digest, now)

    def __repr__(self) -> str:
        return "MTimeMethod()"


class HashMethod:
    """
    A dependency changed when its contents did (SHA-256).

    A file touched, copied or checked out again with identical contents is not
    a change. A file whose stat signature is unchanged since it was hashed on
    this machine is not read again, unless it was modified so close to that
    moment that the stat can't be trusted.
    """

    __slots__ = ()

    def fingerprint(self, path: str, stat: os.stat_result) -> Fingerprint:
        digest = file_digest(path, stat.st_size)
        return _of(stat, digest, time.time_ns())

    def check(
        self, path: str, stat: os.stat_result, recorded: Fingerprint
    ) -> Fingerprint | None:
        same = same_stat(stat, recorded)
        if same and not racy(recorded):
            return recorded
        digest = recorded[2]
        if digest is None or stat.st_size != recorded[1]:
            return None
        if file_digest(path, stat.st_size) != digest:
            return None
        now = time.time_ns()
        if _racy_stat(stat, now):
            return recorded  # still too fresh to trust; check again next time
        return _of(stat, digest, now)

    def __repr__(self) -> str:
        return "HashMethod()"


def _of(stat: os.stat_result, digest: str | None, taken_ns: int) -> Fingerprint:
    return (
        stat.st_mtime_ns,
        stat.st_size,
        digest,
        taken_ns,
        stat.st_ctime_ns,
        stat.st_ino,
    )


def same_stat(stat: os.stat_result, recorded: Fingerprint) -> bool:
    """
    Whether *stat* has the stat signature *recorded*: never for a fingerprint
    without one (taken on another machine, or by another method).
    """
    return (
        len(recorded) == 6
        and stat.st_mtime_ns == recorded[0]
        and stat.st_ctime_ns == recorded[4]
        and stat.st_ino == recorded[5]
        and stat.st_size == recorded[1]
    )


def portable(recorded: Fingerprint) -> Fingerprint:
    """
    *recorded* without its stat signature, for another machine: its size,
    digest and nothing that could pass for a stat taken there.
    """
    return (None, recorded[1], recorded[2], 0, None, None)


def racy(recorded: Fingerprint) -> bool:
    """
    Whether the stat signature in *recorded* was taken too soon after its
    file was modified to prove that the content is still the one seen then.
    """
    mtime_ns, taken_ns = recorded[0], recorded[3]
    if mtime_ns is None or len(recorded) != 6:
        return False  # no signature: nothing to trust in the first place
    ctime_ns = recorded[4]
    return _racy(mtime_ns, taken_ns) or (
        ctime_ns is not None and _racy(ctime_ns, taken_ns)
    )


def _racy_stat(stat: os.stat_result, taken_ns: int) -> bool:
    return _racy(stat.st_mtime_ns, taken_ns) or _racy(stat.st_ctime_ns, taken_ns)


def _racy(mtime_ns: int, taken_ns: int) -> bool:
    """
    Whether a file time *mtime_ns*, seen at *taken_ns*, is too recent to
    prove that the file's content is the one seen then.
    """
    window = _RACY_WHOLE_SECONDS_NS if mtime_ns % 1_000_000_000 == 0 else _RACY_NS
    return mtime_ns >= taken_ns - window


def hash_fingerprint(path: str) -> Fingerprint | None:
    """
    ``HashMethod().fingerprint(path, os.stat(path))``: one stat, one open,
    one read for a small file. None if there is no file at *path*.

    Raises:
        IsADirectoryError: *path* is a directory.
        OSError: it is not a regular file (a FIFO, a socket, a device: never
            opened), or it can't be read.
    """
    stat = stat_dependency(path)
    if stat is None:
        return None
    fd = os.open(path, _READ_FLAGS)
    try:
        digest = sha256_fd(fd, stat.st_size)
    finally:
        os.close(fd)
    return _of(stat, digest, time.time_ns())


_KINDS = (
    (stat_module.S_ISFIFO, "a FIFO (named pipe)"),
    (stat_module.S_ISSOCK, "a socket"),
    (stat_module.S_ISCHR, "a character device"),
    (stat_module.S_ISBLK, "a block device"),
)


def stat_dependency(path: str) -> os.stat_result | None:
    """
    ``os.stat(path)``, or None if there is no such file.

    Raises:
        IsADirectoryError: *path* is a directory, which can't be a dependency.
        OSError: *path* is not a regular file (``EINVAL``): a FIFO, a socket
            or a device, whose contents can't be fingerprinted (reading a
            FIFO waits for a writer).
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    mode = st.st_mode
    if stat_module.S_ISREG(mode):
        return st
    if stat_module.S_ISDIR(mode):
        raise IsADirectoryError(
            errno.EISDIR,
            "jobstamps dependencies must be files, and this is a directory; "
            "list the files in it instead",
            path,
        )
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise OSError(
        errno.EINVAL,
        f"jobstamps dependencies must be regular files, and this is {kind}",
        path,
    )


def fingerprint(path: str, method: Method) -> Fingerprint | None:
    """
    *method*'s fingerprint of the dependency at *path*, or None if it is
    missing.

    Raises:
        IsADirectoryError: *path* is a directory.
        OSError: *path* is not a regular file, or can't be read.
    """
    if type(method) is HashMethod:
        return hash_fingerprint(path)
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
