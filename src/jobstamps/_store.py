"""
Where stamps live: :class:`DirectoryStore` finds, loads, saves, lists and
removes stamp files under a root directory.

Each function gets a folder under the root, and its stamps fan out by digest
prefix (``<root>/<function>/ab/cd/abcd...``, :mod:`._layout`), so no
folder grows large even with millions of stamps. Writers never modify a
stamp in place: they write a temporary file next to it and rename it over
the stamp (:mod:`._fs`), so readers see the old stamp or the new one. A root or folder that another user
could write in is refused: loading a stamp unpickles it.

A root the store creates is tagged with a ``CACHEDIR.TAG``. The store
removes only files whose names it makes (:mod:`._layout`): stamps, their
lock files and temporary files.

The store knows files, not freshness: a stamp (:mod:`._stampfile`) is a
record of what a run saw and returned, and the store never looks inside its
result.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module

from . import _fs, _log

# Found here by cache maintenance too.
from ._layout import function_folder as function_folder
from ._layout import is_stamp_file as is_stamp_file
from ._layout import remove_own_files
from ._layout import stamp_files as stamp_files
from ._stampfile import Spool, Stamp, StampFormatError, unpack, write
from .exceptions import CacheDirError, UnsafeCacheDirError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap

    from ._stampfile import Dependencies

_SEP = os.sep
_UID = os.getuid() if hasattr(os, "getuid") else None
# Recently read stamps are kept in memory and trusted while their file's stat
# is unchanged: a hit then costs one stat instead of an open and a read. The
# limit is on the pickled result; the metadata of a job with many
# dependencies is what a hit needs most to keep (it is also what costs most
# to decode again), so it only counts towards the total. Without this memory
# the hit of scenario 1 of benchmarks/run.py takes 3.5x as long (8.8 ->
# 30.6 us), over its targets (0.25x jobstamps 0.0.20, 0.33x diskcache).
_REMEMBER_BYTES = 64 * 1024
_REMEMBER_FILE_BYTES = 16 * 1024 * 1024
_REMEMBER_COUNT = 4096
_REMEMBER_TOTAL_BYTES = 256 * 1024 * 1024

# Stamps larger than this are mapped rather than read (one copy fewer): a hit
# on the 200 MB result of scenario 6 of benchmarks/run.py takes 262 ms mapped
# and 428 ms read, which would miss its target of 0.5x a plain read.
_LARGE_BYTES = 1024 * 1024


class DirectoryStore:
    """
    Stamps as files under a root directory.
    """

    __slots__ = (
        "_folders",
        "_recent",
        "_recent_bytes",
        "_safe",
        "_shared",
        "_trusted",
        "root",
    )

    def __init__(self, root: str) -> None:
        self.root = root
        self._folders: dict[str, str] = {}
        self._recent: dict[str, tuple[tuple[int, int, int, int], Stamp]] = {}
        self._recent_bytes = 0  # the sizes of the files of _recent's stamps
        # Whether the root was found safe; checked once per process, since
        # only its owner (found to be us, or root) can make it unsafe later.
        self._safe = False
        # A root anyone may write in (with the sticky bit, like /tmp): each
        # function folder in it must then be checked too, as another user
        # could have created it first; those found safe are kept here.
        self._shared = False
        self._trusted: set[str] = set()

    def folder(self, function: str) -> str:
        folder = self._folders.get(function)
        if folder is None:
            folder = self._folders[function] = os.path.join(
                self.root, function_folder(function)
            )
        return folder

    def path(self, function: str, digest: str) -> str:
        # Joined by hand from a cached folder: with os.path.join, the hit of
        # scenario 1 of benchmarks/run.py takes 1.2x as long (7.3 -> 8.9 us).
        folder = self._folders.get(function) or self.folder(function)
        return f"{folder}{_SEP}{digest[:2]}{_SEP}{digest[2:4]}{_SEP}{digest}"

    def load(self, path: str) -> Stamp | None:
        """
        The stamp at *path*, or None if there is none.

        Raises:
            UnsafeCacheDirError: another user could have written the stamp.
            StampFormatError: the file there is not an intact stamp.
            OSError: the file exists but can't be read.
        """
        if not self._safe:
            self.check_root()
        if self._shared and path.rsplit(os.sep, 3)[0] not in self._trusted:
            self._check_folder(path)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return None
        if self._shared and stat.st_uid != 0 and stat.st_uid != _UID:
            # Another process of ours may have removed a trusted folder that
            # someone else then recreated: a stamp must be ours, too.
            _refuse_unsafe(path, stat, owner_only=True, what="a stamp")
        signature = _signature(stat)
        remembered = self._recent.get(path)
        if remembered is not None and remembered[0] == signature:
            return remembered[1]
        try:
            with open(path, "rb") as file:
                if stat.st_size > _LARGE_BYTES:
                    # Mapped, the file is checked and unpickled where it lies
                    # in the page cache. The map goes when the stamp does.
                    import mmap

                    data: bytes | mmap.mmap = mmap.mmap(
                        file.fileno(), 0, access=mmap.ACCESS_READ
                    )
                else:
                    data = file.read()
        except FileNotFoundError:
            return None
        stamp = unpack(data)
        if stamp.payload is not None:
            stamp.payload.path = path  # read from there when not in memory
        if len(stamp.result) <= _REMEMBER_BYTES and len(data) <= _REMEMBER_FILE_BYTES:
            if (
                len(self._recent) >= _REMEMBER_COUNT
                or self._recent_bytes + len(data) > _REMEMBER_TOTAL_BYTES
            ):
                self._recent.clear()
                self._recent_bytes = 0
            stamp.result = bytes(stamp.result)  # don't pin the whole file
            self._recent[path] = (signature, stamp)
            self._recent_bytes += len(data)
        return stamp

    def lookup(self, path: str) -> Stamp | None:
        """
        The stamp at *path*, or None when there is none or it can't be read
        (logged at debug level): a broken stamp is a miss, never an error.

        Raises:
            CacheDirError: the root, or a folder in it, is not usable.
        """
        try:
            return self.load(path)
        except StampFormatError as e:
            _log.debug("ignoring the stamp %s: %s", path, e)
        except CacheDirError:
            raise
        except NotADirectoryError as e:
            raise cache_dir_error(self.root, e) from e
        except OSError as e:
            _log.debug("ignoring the stamp %s: %s", path, e)
        return None

    def check_root(self) -> None:
        """
        Refuse a root that another user could plant stamps in.

        Unpickling a stamp runs code, so the root must be owned by this user
        (or by the superuser) and not writable by everyone, unless it has the
        sticky bit (as ``/tmp`` has) that stops users from renaming or
        deleting each other's files; in such a shared root, each function's
        folder is checked the same way before use. A root that does not
        exist yet is created private by :meth:`prepare` and checked then.

        Raises:
            UnsafeCacheDirError: the root is unsafe.
        """
        try:
            st = os.stat(self.root)
        except OSError:
            return
        _refuse_unsafe(self.root, st)
        self._shared = bool(st.st_mode & stat_module.S_IWOTH)
        self._safe = True

    def _check_folder(self, path: str) -> None:
        # <root>/<function folder>/ab/cd/<digest>: in a shared root, the
        # function folder is what another user could have made first.
        folder = path.rsplit(os.sep, 3)[0]
        if folder in self._trusted:
            return
        try:
            st = os.lstat(folder)
            if stat_module.S_ISLNK(st.st_mode):
                _refuse_unsafe(folder, st, owner_only=True)  # links are 0777
                st = os.stat(folder)
        except FileNotFoundError:
            return
        _refuse_unsafe(folder, st)
        self._trusted.add(folder)

    def prepare(self, path: str) -> None:
        """
        Create the folders *path* needs, private to the user.

        Raises:
            UnsafeCacheDirError: the root could be written by another user.
            OSError: they can't be created.
        """
        if not self._safe:
            if _fs.make_private_dirs(self.root):
                try:
                    _fs.tag_cache_dir(self.root)
                except OSError as e:  # a cache that backups may copy: no harm
                    _log.debug("could not tag %s as a cache: %s", self.root, e)
            self.check_root()
        if self._shared:
            folder = path.rsplit(os.sep, 3)[0]
            _fs.make_private_dirs(folder)
            self._check_folder(path)
        _fs.make_private_dirs(os.path.dirname(path))

    def save(self, path: str, stamp: Stamp) -> None:
        """
        Write *stamp* at *path* atomically: readers see the old file or the
        new one, never part of either.

        Raises:
            OSError: it could not be written; nothing is left behind.
        """
        self.prepare(path)
        spool = stamp.payload
        # A payload spooled beside the stamp is already in its file: finish
        # that file rather than copy it.
        temporary = (
            spool.atomic
            if isinstance(spool, Spool) and spool.atomic and spool.path == path
            else _fs.AtomicFile(path, 0o600)
        )
        with temporary:
            write(temporary.file, stamp)
            temporary.commit()
        self._recent.pop(path, None)
        _fs.sweep(os.path.dirname(path))

    def forget(self, path: str) -> None:
        """
        Drop what this store remembers of the stamp at *path*.
        """
        self._recent.pop(path, None)

    def refresh(self, path: str, stamp: Stamp, dependencies: Dependencies) -> bool:
        """
        Write *stamp*, which :meth:`load` returned for *path*, back with
        renewed *dependencies*, so that the next check need not read their
        files again: only if it is small (one this store remembers; a large
        result is never rewritten for this), nobody holds its lock (this
        never waits), and its file is still the one it was read from (a
        stamp written meanwhile is never replaced).

        Returns:
            Whether it was written.

        Raises:
            OSError: it could not be written.
        """
        remembered = self._recent.get(path)
        if remembered is None or remembered[1] is not stamp:
            return False
        if stamp.payload is not None and stamp.payload.size > _REMEMBER_BYTES:
            return False  # its payload is large too: never copied for this
        from ._lock import StampLock

        with StampLock(path, blocking=False) as lock:
            if not lock.acquired:
                return False
            try:
                if _signature(os.stat(path)) != remembered[0]:
                    return False
            except FileNotFoundError:
                return False
            refreshed = Stamp(
                stamp.created_ns,
                stamp.duration_ns,
                dependencies,
                stamp.outputs,
                stamp.result,
                stamp.about,
                stamp.payload,
            )
            self.save(path, refreshed)
        return True

    def clear(self, function: str) -> None:
        """
        Remove every stamp of *function*, with its lock and temporary files;
        anything else in its folder is left alone.
        """
        folder = self.folder(function)
        prefix = folder + os.sep
        for path in [p for p in self._recent if p.startswith(prefix)]:
            del self._recent[path]
        self._trusted.discard(folder)  # whoever creates it next must be checked
        remove_own_files(folder)


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    # A rewritten stamp is a new file (a rename): a new inode and times.
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns)


def cache_dir_error(root: str, error: OSError) -> CacheDirError:
    """
    The error to raise when *root*, or a folder jobstamps needs in it, is not
    a directory.
    """
    return CacheDirError(
        error.errno or errno.ENOTDIR,
        f"jobstamps can't keep stamps in {root!r}: it, or a folder jobstamps "
        f"needs inside it, is not a directory ({error.strerror or error})",
        root,
    )


def read_stamp(path: str) -> Stamp:
    """
    The stamp in the file at *path*, read without any store's memory.

    Raises:
        StampFormatError: the file is not an intact stamp.
        OSError: it can't be read.
    """
    with open(path, "rb") as file:
        return unpack(file.read())


def read_head(path: str) -> Stamp:
    """
    The stamp in the file at *path* without its result or its payload's
    bytes (:func:`._stampfile.read_head`): a few small reads, whatever its
    size, and nothing unpickled.

    Raises:
        StampFormatError: the file is not a stamp of this format.
        OSError: it can't be read.
    """
    from ._stampfile import read_head as read

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return read(fd)
    finally:
        os.close(fd)


def remove_stamp(path: str, root: str) -> None:
    """
    Delete the stamp file at *path* under its lock (a job running for it
    finishes first), then the folders it leaves empty, up to but not
    including *root*.

    Raises:
        OSError: the file exists but can't be removed.
    """
    from ._lock import StampLock

    with StampLock(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    root = os.path.abspath(root)
    folder = os.path.dirname(os.path.abspath(path))
    _fs.sweep(folder)  # what killed writers left there
    while folder != root and folder.startswith(root + os.sep):
        try:
            os.rmdir(folder)
        except OSError:  # not empty, or gone
            break
        folder = os.path.dirname(folder)


def _refuse_unsafe(
    path: str, st: os.stat_result, owner_only: bool = False, what: str = "a directory"
) -> None:
    problem = unsafe_reason(st, owner_only)
    if problem is not None:
        raise UnsafeCacheDirError(
            1,  # EPERM
            f"jobstamps refuses to use {what} that {problem} for stamps: "
            "another user could plant a stamp there, and loading a stamp "
            "unpickles it, which can run their code (use a private "
            "directory, chmod 700, or one with the sticky bit, chmod +t)",
            path,
        )


def unsafe_reason(st: os.stat_result, owner_only: bool = False) -> str | None:
    """
    Why a directory (or a file) with stat *st* could hold another user's
    stamps, or None.
    """
    if _UID is not None and st.st_uid not in (_UID, 0):
        return f"is owned by another user (uid {st.st_uid})"
    if owner_only:
        return None
    if st.st_mode & stat_module.S_IWOTH and not st.st_mode & stat_module.S_ISVTX:
        return "is writable by every user and has no sticky bit"
    return None
