"""
How jobstamps decides whether a file changed: the built-in methods.

A method remembers a *fingerprint* of every dependency before the job runs,
and later checks the file against it. :class:`MTimeMethod` compares stat
signatures, :class:`HashMethod` compares contents. Both record the same
fingerprint shape, so a stamp written under one is reused under the other
when nothing changed.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    # typing costs ~4 ms to import, more than a cached `jobstamp` run may
    # spend: the Method protocol lives in ._protocol, for type checkers and
    # for isinstance().
    from typing import Any, TypeAlias

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

_CHUNK = 1 << 20
_SMALL = 1 << 20
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
    through the open file.

    Raises:
        IsADirectoryError: *path* is a directory.
        OSError: it can't be opened or read.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        stat = os.fstat(fd)
        if stat_module.S_ISDIR(stat.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        size = stat.st_size
        digest = _digest_small(fd, size) if size < _SMALL else file_digest(path)
    finally:
        os.close(fd)
    return (stat.st_mtime_ns, size, digest, time.time_ns())


def _digest_small(fd: int, size: int) -> str:
    sha256 = _sha256 or _load_sha256()
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return sha256(data).hexdigest()  # type: ignore[no-any-return]
    return _digest_rest(fd, sha256(data))


def _digest_rest(fd: int, hasher: Any) -> str:
    # A file that grew since its stat: hash it to its end.
    while chunk := os.read(fd, _CHUNK):
        hasher.update(chunk)
    return hasher.hexdigest()  # type: ignore[no-any-return]


_sha256: Any = None


def _load_sha256() -> Any:
    global _sha256
    import hashlib

    _sha256 = hashlib.sha256
    return _sha256


def file_digest(path: str, size: int = -1) -> str:
    """
    SHA-256 of the file at *path*, read in chunks so memory stays bounded.

    *size*, the file's size when known, lets a small file be read whole in
    one call (``hashlib.file_digest`` allocates a buffer per file, which
    costs more than hashing a few KiB); whatever the file holds by then is
    hashed, to its end.
    """
    import hashlib

    if 0 <= size < _SMALL:
        fd = os.open(path, _READ_FLAGS)
        try:
            return _digest_small(fd, size)
        finally:
            os.close(fd)
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


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
