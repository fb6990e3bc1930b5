"""
Files as jobstamps writes them: temporary names, atomic writes, private
folders, sweeping of abandoned temporaries, and the SHA-256 of a file.

Every module that writes a file goes through :class:`AtomicFile`, so there is
one temporary-name scheme (``.<name>.<pid>-<random>.tmp`` beside the target)
that readers skip and :func:`sweep` recognises (:func:`is_temporary`); no
other file is ever swept. A directory jobstamps creates to keep a cache in
gets a ``CACHEDIR.TAG`` (:func:`tag_cache_dir`). This module knows paths and
bytes only: nothing of stamps, keys, stores or outputs.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, BinaryIO

TEMP_SUFFIX = ".tmp"
# A temporary file this old was left by a writer that died before renaming it
# (no stamp takes minutes to write); the next save in its folder removes it.
TEMP_MAX_AGE_NS = 10 * 60 * 1_000_000_000

# Files are hashed and copied in chunks of this many bytes; files smaller
# than SMALL_FILE are hashed from a single read.
CHUNK = 1 << 20
SMALL_FILE = 1 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


# The Cache Directory Tagging Specification (https://bford.info/cachedir/):
# backup and archiving tools skip a directory holding this file.
CACHEDIR_TAG = "CACHEDIR.TAG"
CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
_CACHEDIR_TAG_TEXT = CACHEDIR_SIGNATURE + (
    b"\n# This file is a cache directory tag created by jobstamps.\n"
    b"# For information about cache directory tags, see:\n"
    b"#\thttps://bford.info/cachedir/\n"
)


def temporary_name(path: str) -> str:
    """
    A fresh name for a temporary file beside *path*: hidden, unique to this
    process, ending in :data:`TEMP_SUFFIX`. Readers never open it, and
    :func:`sweep` removes it if its writer dies.

    *path* may also be a ``/``-separated path of a remote filesystem.
    """
    folder, name = os.path.split(path)
    return os.path.join(
        folder, f".{name}.{os.getpid()}-{os.urandom(4).hex()}{TEMP_SUFFIX}"
    )


class AtomicFile:
    """
    A new temporary file beside *path*, open for writing as :attr:`file`.

    :meth:`commit` renames it onto *path* (or another name), so readers see
    the old file or the new one, never part of either; leaving the ``with``
    block without committing removes it. Created with *mode* (less the
    umask), never over an existing file.
    """

    __slots__ = ("_path", "file", "name")

    def __init__(self, path: str, mode: int = 0o600) -> None:
        self._path = path
        self.name = temporary_name(path)
        # Closed by __exit__ (or commit), as the class is a context manager.
        fd = os.open(self.name, _CREATE_FLAGS, mode)
        self.file: BinaryIO = open(fd, "wb")  # noqa: SIM115

    def __enter__(self) -> AtomicFile:
        return self

    def commit(self, path: str | None = None) -> None:
        """
        Move the file written so far onto *path* (default: the path given).
        """
        self.file.close()
        os.replace(self.name, self._path if path is None else path)

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()
        quietly(os.unlink, self.name)  # gone already if committed


def write_atomically(
    path: str, chunks: Iterable[bytes | memoryview], mode: int = 0o600
) -> None:
    """
    Write *chunks* to *path* through an :class:`AtomicFile`.

    If *chunks* fails, *path* is left as it was and nothing else is left.
    """
    with AtomicFile(path, mode) as temporary:
        for chunk in chunks:
            temporary.file.write(chunk)
        temporary.commit()


def is_temporary(name: str) -> bool:
    """
    Whether the file *name* (a base name) is one of :func:`temporary_name`'s:
    ``.<name>.<pid>-<8 hex digits>.tmp``.
    """
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return False
    pid, dash, tail = name[: -len(TEMP_SUFFIX)].rpartition(".")[2].partition("-")
    return (
        bool(dash)
        and pid.isdigit()
        and len(tail) == 8
        and all(c in "0123456789abcdef" for c in tail)
    )


def make_private_dirs(path: str) -> bool:
    """
    ``os.makedirs(path, 0o700)``, but private all the way down: makedirs
    applies the mode only to the last folder it creates.

    Returns:
        Whether *path* itself was created.
    """
    if os.path.isdir(path):
        return False
    parent = os.path.dirname(path)
    if parent and parent != path:
        make_private_dirs(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
        return False
    return True


def tag_cache_dir(path: str) -> None:
    """
    Mark the directory *path* as a cache with a ``CACHEDIR.TAG``.
    """
    write_atomically(os.path.join(path, CACHEDIR_TAG), [_CACHEDIR_TAG_TEXT], 0o644)


def is_tagged_cache_dir(path: str) -> bool:
    """
    Whether the directory *path* holds a ``CACHEDIR.TAG`` (of any tool).
    """
    try:
        with open(os.path.join(path, CACHEDIR_TAG), "rb") as file:
            return file.read(len(CACHEDIR_SIGNATURE)) == CACHEDIR_SIGNATURE
    except OSError:
        return False


def sweep(folder: str) -> None:
    """
    Remove the temporary files in *folder* that are surely abandoned: older
    than :data:`TEMP_MAX_AGE_NS` (their writer was killed before renaming).
    Only names of :func:`temporary_name`'s scheme are considered.
    """
    try:
        names = [n for n in os.listdir(folder) if n.endswith(TEMP_SUFFIX)]
    except OSError:
        return
    names = [n for n in names if is_temporary(n)]
    if not names:
        return
    import time

    too_old = time.time_ns() - TEMP_MAX_AGE_NS
    for name in names:
        path = os.path.join(folder, name)
        try:
            if os.lstat(path).st_mtime_ns < too_old:
                os.unlink(path)
        except OSError:
            continue


def quietly(call: Callable[[Any], object], argument: object) -> None:
    """
    ``call(argument)``, ignoring an OSError: for clean-up whose failure
    changes nothing (``contextlib.suppress`` would cost its import, 0.6 ms,
    on every cached ``jobstamp`` run).
    """
    try:
        call(argument)
    except OSError:
        pass


def sha256_file(path: str, size: int = -1) -> str:
    """
    SHA-256 (hex) of the file at *path*, read to its end in chunks.

    *size*, the file's size when known, lets a small file be read in one
    call.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        return sha256_fd(fd, size)
    finally:
        os.close(fd)


def sha256_fd(fd: int, size: int = -1, copy: BinaryIO | None = None) -> str:
    """
    SHA-256 (hex) of what is left to read from the descriptor *fd*, read in
    chunks so memory stays bounded; every chunk is also written to *copy*
    when one is given.

    *size*, what is expected to be left, lets a small file be read in one
    ``os.read``: on scenario 4 of ``benchmarks/run.py`` (10,000 files of
    4 KiB) that reads 608 MiB/s where ``hashlib.file_digest``, which
    allocates a buffer per file, reads 219 MiB/s. A file that grew since
    *size* was taken is still hashed to its end.
    """
    import hashlib

    if 0 <= size < SMALL_FILE and copy is None:
        data = os.read(fd, size + 1)
        hasher = hashlib.sha256(data)
        if len(data) <= size:
            return hasher.hexdigest()
    else:
        hasher = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(fd, "rb", buffering=0, closefd=False) as file:
        while read := file.readinto(buffer):
            hasher.update(view[:read])
            if copy is not None:
                copy.write(view[:read])
    return hasher.hexdigest()
