"""
Where stamps live and how one is read, written atomically, and cleared.

The store knows nothing of freshness: a stamp is a record of what a run saw
(its dependencies' fingerprints, its outputs) and what it returned.

On disk, each function gets a folder under the root, and its stamps fan out
by digest prefix (``<root>/<function>/ab/cd/abcd...``), so no folder grows
large even with millions of stamps. A stamp file is::

    MAGIC (7 bytes) | format version (1) | meta length (4) | meta (marshal) |
    result (pickle) | CRC-32 (4)

The CRC-32 covers everything between the version and itself, the meta length
included; at the end, it can be computed while a large result is pickled
straight into the file. A stamp that is missing, truncated, of another format
version or fails its checksum is no stamp at all.

Writers never modify a stamp in place: they write a temporary file next to it
and rename it over the stamp, so readers see the old stamp or the new one.
Running a job that missed is serialised per stamp by :meth:`DirectoryStore.lock`
(a lock in this process, then ``flock`` on ``<stamp>.lock`` across processes);
reading a stamp takes no lock.
"""

from __future__ import annotations

import _thread
import marshal
import os
import stat as stat_module
import sys
import zlib

from . import _log
from ._key import blake2b
from .exceptions import UnsafeCacheDirError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from collections.abc import Callable
    from typing import Any, BinaryIO

    from ._methods import Fingerprint

    Dependencies = tuple[tuple[str, Fingerprint | None], ...]
    # (path, SHA-256 of the contents kept for restoring it or None, mode)
    Outputs = tuple[tuple[str, str | None, int], ...]

MAGIC = b"JOBSTMP"
# 2: the checksum also covers the meta length.
# 3: the checksum moved to the end of the file.
FORMAT_VERSION = 3
_HEADER = MAGIC + bytes([FORMAT_VERSION])
_HEADER_SIZE = len(_HEADER) + 4
_TRAILER_SIZE = 4
_MARSHAL_VERSION = 4
TEMP_SUFFIX = ".tmp"
_SEP = os.sep
LOCK_SUFFIX = ".lock"
_UID = os.getuid() if hasattr(os, "getuid") else None
# A temporary file this old was left by a writer that died before renaming it
# (no stamp takes minutes to write); the next save in its folder removes it.
TEMP_MAX_AGE_NS = 10 * 60 * 1_000_000_000

# Recently read stamps are kept in memory and trusted while their file's stat
# is unchanged: a hit then costs one stat instead of an open and a read. The
# limit is on the pickled result; the metadata of a job with many
# dependencies is what a hit needs most to keep (it is also what costs most
# to decode again), so it only counts towards the total.
_REMEMBER_BYTES = 64 * 1024
_REMEMBER_FILE_BYTES = 16 * 1024 * 1024
_REMEMBER_COUNT = 4096
_REMEMBER_TOTAL_BYTES = 256 * 1024 * 1024

# Stamps larger than this are mapped rather than read (one copy fewer), and
# results larger than this are pickled straight into the stamp file.
_LARGE_BYTES = 1024 * 1024


# Part of every key: a stamp is only ever read by the same stamp format and
# the same Python (pickles of one minor version may not load in another).
KEY_CONTEXT = b"stamp-format=%d;python=%d.%d" % (FORMAT_VERSION, *sys.version_info[:2])

BLOBS = "blobs"
_BLOB_CHUNK = 1 << 20


class Stamp:
    """
    What one run of a job saw and returned.
    """

    __slots__ = ("checks", "created_ns", "dependencies", "outputs", "result")

    def __init__(
        self,
        created_ns: int,
        dependencies: Dependencies,
        outputs: Outputs,
        result: bytes | memoryview | Pickling,
    ) -> None:
        self.created_ns = created_ns
        self.dependencies = dependencies
        self.outputs = outputs
        # The pickled return value; callers unpickle it on every hit so that
        # no two callers share one mutable object. (A Pickling only in a
        # stamp on its way to save(); stamps read back always hold bytes.)
        self.result: bytes | memoryview = result  # type: ignore[assignment]
        # What the freshness check derives from *dependencies*, made once
        # per stamp read and kept with it (see _core._unchanged).
        self.checks: Any = None


class Pickling:
    """
    A result still to be pickled, which the store pickles straight into the
    stamp file as it writes it (no copy of a large result in memory).

    Only for values whose pickling can't fail, as ``bytes``.
    """

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def kept_outputs(stamp: Stamp) -> dict[str, tuple[str, int]]:
    """
    ``{path: (sha256, mode)}`` of the outputs whose contents *stamp* kept.
    """
    return {
        record[0]: (record[1], record[2])
        for record in stamp.outputs
        if isinstance(record, tuple) and record[1]
    }


class StampFormatError(ValueError):
    """
    The bytes of a stamp file are not a stamp this version can read.
    """


def encode(stamp: Stamp) -> tuple[bytes, bytes, bytes | memoryview, bytes]:
    """
    The header, meta, result and trailer sections of *stamp*'s file, in order.
    """
    result: object = stamp.result
    if isinstance(result, Pickling):  # whole, here; save() needs no copy
        import _pickle

        result = _pickle.dumps(result.value, protocol=-1)
    assert isinstance(result, bytes | memoryview)
    header = _header(stamp)
    checksum = zlib.crc32(result, zlib.crc32(memoryview(header)[len(_HEADER) :]))
    return (
        header[: len(_HEADER)],
        header[len(_HEADER) :],
        result,
        checksum.to_bytes(4, "big"),
    )


def _header(stamp: Stamp) -> bytes:
    # Everything before the result: magic, version, meta length and meta.
    meta = marshal.dumps(
        (stamp.created_ns, stamp.dependencies, stamp.outputs), _MARSHAL_VERSION
    )
    return _HEADER + len(meta).to_bytes(4, "big") + meta


def decode(data: bytes | memoryview | mmap.mmap) -> Stamp:
    """
    Raises:
        StampFormatError: *data* is not an intact stamp of this format.
    """
    view = memoryview(data)
    if len(view) < _HEADER_SIZE + _TRAILER_SIZE or bytes(view[:7]) != MAGIC:
        raise StampFormatError("not a stamp file (bad magic or truncated header)")
    if view[7] != FORMAT_VERSION:
        raise StampFormatError(f"stamp format version {view[7]}, not {FORMAT_VERSION}")
    end = len(view) - _TRAILER_SIZE
    checksum = int.from_bytes(view[end:], "big")
    meta_end = _HEADER_SIZE + int.from_bytes(view[8:12], "big")
    if meta_end > end or _crc32(view[8:end]) != checksum:
        raise StampFormatError("checksum mismatch (truncated or corrupt)")
    try:
        created_ns, dependencies, outputs = marshal.loads(view[_HEADER_SIZE:meta_end])
    except (EOFError, ValueError, TypeError) as e:
        raise StampFormatError(f"unreadable metadata: {e}") from None
    return Stamp(created_ns, dependencies, outputs, view[meta_end:end])


def function_folder(function: str) -> str:
    """
    The folder name for *function*'s stamps: readable, and unique by digest.
    """
    readable = "".join(c if c.isalnum() or c in "._-" else "_" for c in function)
    suffix = blake2b(
        function.encode("utf-8", "surrogatepass"), digest_size=8
    ).hexdigest()
    return f"{readable[-48:]}-{suffix}"


def make_private_dirs(path: str) -> None:
    """
    ``os.makedirs(path, 0o700)``, but private all the way down: makedirs
    applies the mode only to the last folder it creates.
    """
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        make_private_dirs(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


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
        self._recent: dict[str, tuple[tuple[int, int, int], Stamp]] = {}
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
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
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
        stamp = decode(data)
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
            make_private_dirs(self.root)
            self.check_root()
        if self._shared:
            folder = path.rsplit(os.sep, 3)[0]
            make_private_dirs(folder)
            self._check_folder(path)
        make_private_dirs(os.path.dirname(path))

    def save(self, path: str, stamp: Stamp) -> None:
        """
        Write *stamp* at *path* atomically: readers see the old file or the
        new one, never part of either.

        Raises:
            OSError: it could not be written; nothing is left behind.
        """
        header = _header(stamp)
        self.prepare(path)
        temporary = _temporary(path)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as file:
                writer = _ChecksumWriter(file, header)
                result: object = stamp.result
                if isinstance(result, Pickling):
                    import _pickle

                    _pickle.dump(result.value, writer, protocol=-1)
                else:
                    writer.write(result)
                file.write(writer.checksum.to_bytes(4, "big"))
            os.replace(temporary, path)
        finally:
            _quietly(os.unlink, temporary)
        self._recent.pop(path, None)
        _sweep(os.path.dirname(path))

    def lock(self, path: str) -> StampLock:
        """
        The right to run the job stamped at *path*, for one caller at a time.

        Use it as a context manager around re-checking the stamp and running:
        it excludes other threads of this process and other processes on this
        machine that lock the same *path*. A lock that can't be taken (a
        read-only folder, no ``flock``) degrades to running unlocked.
        """
        return StampLock(path)

    def forget(self, path: str) -> None:
        self._recent.pop(path, None)

    def clear(self, function: str) -> None:
        """
        Remove every stamp of *function*.
        """
        import shutil

        folder = self.folder(function)
        prefix = folder + os.sep
        for path in [p for p in self._recent if p.startswith(prefix)]:
            del self._recent[path]
        self._trusted.discard(folder)  # whoever creates it next must be checked
        shutil.rmtree(folder, ignore_errors=True)

    def blob_path(self, digest: str) -> str:
        """
        Where the file contents with SHA-256 *digest* are kept.
        """
        return f"{self.root}{os.sep}{BLOBS}{os.sep}{digest[:2]}{os.sep}{digest}"

    def put_blob(self, source: str) -> tuple[str, int]:
        """
        Keep a copy of the file at *source*, named by its contents.

        The file is streamed, never held whole in memory; contents already
        kept are not stored twice.

        Returns:
            The SHA-256 of the contents, and the file's permission bits.

        Raises:
            OSError: *source* can't be read or the copy can't be written.
        """
        folder = f"{self.root}{os.sep}{BLOBS}"
        make_private_dirs(folder)
        temporary = _temporary(f"{folder}{os.sep}")
        try:
            with open(source, "rb") as src:
                mode = stat_module.S_IMODE(os.fstat(src.fileno()).st_mode)
                name = _copy_hashing(src, temporary)
            target = self.blob_path(name)
            if not os.path.exists(target):
                make_private_dirs(os.path.dirname(target))
                os.replace(temporary, target)
        finally:
            _quietly(os.unlink, temporary)
        return name, mode

    def restore_blob(self, digest: str, destination: str, mode: int) -> bool:
        """
        Write the kept contents *digest* to *destination*, atomically.

        Returns:
            False if those contents are not kept here, or the copy kept is
            not intact (it is then removed); *destination* is untouched.
        """
        return copy_verified(self.blob_path(digest), digest, destination, mode)

    def blob_download(self, digest: str) -> str:
        """
        A fresh temporary path to fetch the contents *digest* into, for
        :meth:`adopt_blob`.
        """
        folder = os.path.dirname(self.blob_path(digest))
        make_private_dirs(folder)
        return _temporary(f"{folder}{os.sep}.{digest}")

    def adopt_blob(self, temporary: str, digest: str) -> bool:
        """
        Keep the file *temporary* as the contents *digest*, if that is what
        it holds; it is moved or removed either way.
        """
        import hashlib

        try:
            with open(temporary, "rb") as file:
                actual = hashlib.file_digest(file, "sha256").hexdigest()
            if actual != digest:
                _log.debug(
                    "discarding fetched contents: sha256 %s, not %s", actual, digest
                )
                return False
            os.replace(temporary, self.blob_path(digest))
            return True
        except OSError as e:
            _log.debug("could not keep fetched contents %s: %s", digest, e)
            return False
        finally:
            _quietly(os.unlink, temporary)


def copy_verified(source: str, digest: str, destination: str, mode: int) -> bool:
    """
    Copy *source* to *destination* if its SHA-256 is *digest*, streaming, via
    a temporary file next to *destination* renamed into place.

    Returns:
        False, leaving *destination* as it was, if *source* is missing or its
        contents don't match (a corrupt *source* is removed).

    Raises:
        OSError: *destination* can't be written.
    """
    folder = os.path.dirname(os.path.abspath(destination))
    temporary = _temporary(f"{folder}{os.sep}.{os.path.basename(destination)}")
    if not os.path.exists(source):
        return False
    os.makedirs(folder, exist_ok=True)  # the user's own folder: default mode
    try:
        with open(source, "rb") as src:
            copied = _copy_hashing(src, temporary)
        if copied != digest:
            _log.debug("removing %s: its contents don't match their name", source)
            _quietly(os.unlink, source)
            return False
        os.chmod(temporary, mode)
        os.replace(temporary, destination)
        return True
    finally:
        _quietly(os.unlink, temporary)


def stamp_files(
    root: str, function: str | None = None
) -> list[tuple[str, os.stat_result]]:
    """
    Every stamp file under *root* with its ``lstat``, or only *function*'s.

    Temporary files of writes in progress, and anything that is not a
    regular file, are left out. A missing *root* holds no stamps.
    """
    top = (
        os.path.join(root, function_folder(function)) if function is not None else root
    )
    found: list[tuple[str, os.stat_result]] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False) and not entry.name.endswith(
                TEMP_SUFFIX
            ):
                try:
                    found.append((entry.path, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
    return found


def read_stamp(path: str) -> Stamp:
    """
    The stamp in the file at *path*, read without any store's memory.

    Raises:
        StampFormatError: the file is not an intact stamp.
        OSError: it can't be read.
    """
    with open(path, "rb") as file:
        return decode(file.read())


def remove_stamp(path: str, root: str) -> None:
    """
    Delete the stamp file at *path*, then the folders it leaves empty,
    up to but not including *root*.

    Raises:
        OSError: the file exists but can't be removed.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    root = os.path.abspath(root)
    folder = os.path.dirname(os.path.abspath(path))
    while folder != root and folder.startswith(root + os.sep):
        try:
            os.rmdir(folder)
        except OSError:  # not empty, or gone
            break
        folder = os.path.dirname(folder)


def collect_blobs(root: str) -> tuple[int, int]:
    """
    Remove the kept output contents under *root* that no stamp names any
    more, except those kept in the last minutes (a job that just kept its
    outputs may not have written its stamp yet).

    Returns:
        How many files were removed, and their total size.
    """
    import time

    folder = os.path.join(root, BLOBS)
    if not os.path.isdir(folder):
        return 0, 0
    named: set[str] = set()
    for path, _ in stamp_files(root):
        if path.startswith(folder + os.sep):
            continue
        try:
            stamp = read_stamp(path)
        except (OSError, StampFormatError):
            continue
        named.update(digest for digest, _ in kept_outputs(stamp).values())
    too_new = time.time_ns() - TEMP_MAX_AGE_NS
    count = size = 0
    for path, st in stamp_files(folder):
        if os.path.basename(path) in named or st.st_mtime_ns > too_new:
            continue
        try:
            os.unlink(path)
        except OSError:
            continue
        count += 1
        size += st.st_size
    return count, size


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


class _ChecksumWriter:
    """
    Writes to *file* what comes after *header*, keeping the CRC-32 of all
    of it but the magic and version.
    """

    __slots__ = ("checksum", "file")

    def __init__(self, file: Any, header: bytes) -> None:
        self.file = file
        file.write(header)
        self.checksum = zlib.crc32(memoryview(header)[len(_HEADER) :])

    def write(self, data: Any) -> int:
        if len(data) > _LARGE_BYTES:
            self.checksum = _write_and_checksum(self.file, data, self.checksum)
        else:
            self.checksum = zlib.crc32(data, self.checksum)
            self.file.write(data)
        return len(data)


def _crc32(data: memoryview) -> int:
    """
    ``zlib.crc32(data)``; over a large buffer, its two halves are summed in
    two threads (zlib lets go of the GIL) and the sums combined.
    """
    if len(data) < _PARALLEL_CRC_BYTES:
        return zlib.crc32(data)
    half = len(data) // 2
    done = _thread.allocate_lock()
    done.acquire()
    first: list[int] = []

    def crc() -> None:
        try:
            first.append(zlib.crc32(data[:half]))
        finally:
            done.release()

    try:
        _thread.start_new_thread(crc, ())
    except RuntimeError:  # pragma: no cover - no threads left
        return zlib.crc32(data)
    try:
        second = zlib.crc32(data[half:])
    finally:
        done.acquire()
    if not first:  # pragma: no cover - the thread failed (out of memory)
        return zlib.crc32(data)
    return crc32_combine(first[0], second, len(data) - half)


_PARALLEL_CRC_BYTES = 16 * 1024 * 1024


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """
    The CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)``:
    zlib's crc32_combine, which Python's zlib does not offer.
    """
    if length2 <= 0:
        return crc1
    # The operator that feeds one zero bit to a CRC, as 32 columns over GF(2);
    # squared, it feeds two, then four, and so on.
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, column) for column in matrix]


def _write_and_checksum(file: Any, data: Any, checksum: int) -> int:
    # Both zlib.crc32 and the write let go of the GIL over large buffers: the
    # checksum is taken in another thread while the data is written.
    done = _thread.allocate_lock()
    done.acquire()
    outcome: list[object] = []

    def crc() -> None:
        try:
            outcome.append(zlib.crc32(data, checksum))
        except BaseException as e:  # pragma: no cover - out of memory, say
            outcome.append(e)
        finally:
            done.release()

    try:
        _thread.start_new_thread(crc, ())
    except RuntimeError:  # pragma: no cover - no threads left
        file.write(data)
        return zlib.crc32(data, checksum)
    try:
        file.write(data)
    finally:
        done.acquire()
    value = outcome[0]
    if isinstance(value, BaseException):  # pragma: no cover
        raise value
    return value  # type: ignore[return-value]


def _quietly(call: Callable[[Any], object], argument: object) -> None:
    # Clean-up whose failure changes nothing (contextlib costs an import).
    try:
        call(argument)
    except OSError:
        pass


def _temporary(path: str) -> str:
    """
    A fresh name for a temporary file beside *path*: readers never open it,
    and :func:`_sweep` removes it if its writer dies.
    """
    return f"{path}.{os.getpid()}-{os.urandom(4).hex()}{TEMP_SUFFIX}"


def _copy_hashing(source: BinaryIO, temporary: str) -> str:
    """
    Stream *source* into the new file *temporary*; the SHA-256 of the copy.
    """
    import hashlib

    digest = hashlib.sha256()
    with open(temporary, "xb") as copy:
        while chunk := source.read(_BLOB_CHUNK):
            digest.update(chunk)
            copy.write(chunk)
    return digest.hexdigest()


def _sweep(folder: str) -> None:
    # Temporary files of writers killed before their rename are never read
    # (readers open the stamp's own name); remove them once surely abandoned.
    try:
        names = [n for n in os.listdir(folder) if n.endswith(TEMP_SUFFIX)]
    except OSError:
        return
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


class _KeyLock:
    __slots__ = ("lock", "owner", "users")

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.users = 0
        self.owner: int | None = None  # the thread holding the lock


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
        _quietly(os.close, fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class StampLock:
    """
    Exclusive right to run one stamp's job; see :meth:`DirectoryStore.lock`.

    Across processes this is ``flock`` on ``<stamp>.lock``: the kernel drops
    it when its holder exits or is killed, so a waiter takes over and never
    waits for a dead process. ``flock`` belongs to an open file, not to a
    thread, so threads of one process first queue on an in-process lock.
    The holder removes the lock file before releasing it; a waiter that then
    gets the lock of a removed file notices and locks the new one. A thread
    that holds a stamp's lock and asks for it again gets it at once.
    """

    __slots__ = ("_entry", "_fd", "_lock_path", "_nested", "_path", "_pid")

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock_path = path + LOCK_SUFFIX
        self._fd: int | None = None
        self._pid = 0
        self._entry: _KeyLock | None = None
        self._nested = False

    def __enter__(self) -> StampLock:
        me = _thread.get_ident()
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
            lock.acquire()
        except BaseException:
            self._leave()
            raise
        entry.owner = me
        try:
            self._pid = os.getpid()
            self._fd = _flock(self._lock_path)
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
            _quietly(os.unlink, self._lock_path)
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


def _flock(lock_path: str) -> int | None:
    """
    A descriptor of *lock_path* holding an exclusive ``flock``, or None if
    locking is not possible there.
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
            fcntl.flock(fd, fcntl.LOCK_EX)
            mine = os.fstat(fd)
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                current = None
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
