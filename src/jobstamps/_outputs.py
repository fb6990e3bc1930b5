"""
Kept output contents: output files copied aside when a job runs, so that a
hit whose outputs are missing writes them back instead of running.

Contents are kept by SHA-256, locally as ``<cache>/blobs/ab/<digest>`` and
remotely under ``blobs/<digest>``; a stamp records ``(path, digest, mode)``
for each output. Files are streamed, never held whole, and every copy is
checked against its digest before it is used: a local copy that fails is
removed, and a remote copy that fails is uploaded again by the next
publisher in this process that holds the real file. The same code serves the
local cache and a remote store (asked only when the local copy is missing).
A digest is used in a path only once it is known to be 64 lowercase hex
digits, and only files named so (and temporary files) are ever removed.

This module is imported only for jobs with *restore_outputs*, by sharing
(which validates digests here) and by cache maintenance. It does not decide freshness; :mod:`._freshness` asks it only
whether a missing output could be written back.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module

from . import _fs, _log
from ._layout import is_stamp_file, stamp_files
from ._stampfile import StampFormatError
from ._store import read_head

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeGuard

    from ._stampfile import Outputs, Stamp
    from .remote import RemoteStore

    RemoteOpener = Callable[[], RemoteStore | None]

BLOBS = "blobs"
_HEX = frozenset("0123456789abcdef")

# Digests of remote copies found not to hold their contents, in this process:
# a publisher holding the real file uploads it again.
_bad_remote: set[str] = set()


def is_digest(digest: object) -> TypeGuard[str]:
    """
    Whether *digest* is a SHA-256 as jobstamps names contents: 64 lowercase
    hex digits, and so safe as a file name.
    """
    return isinstance(digest, str) and len(digest) == 64 and _HEX.issuperset(digest)


def blob_path(root: str, digest: str) -> str:
    """
    Where the contents with SHA-256 *digest* are kept under the cache *root*.

    Raises:
        ValueError: *digest* is not 64 lowercase hex digits.
    """
    if not is_digest(digest):
        raise ValueError(f"jobstamps: not a SHA-256 digest: {digest!r}")
    return f"{root}{os.sep}{BLOBS}{os.sep}{digest[:2]}{os.sep}{digest}"


def blob_key(digest: str) -> str:
    """
    The remote key of the contents with SHA-256 *digest*.

    Raises:
        ValueError: *digest* is not 64 lowercase hex digits.
    """
    if not is_digest(digest):
        raise ValueError(f"jobstamps: not a SHA-256 digest: {digest!r}")
    return f"{BLOBS}/{digest}"


def kept(stamp: Stamp) -> dict[str, tuple[str, int]]:
    """
    ``{path: (sha256, mode)}`` of the outputs whose contents *stamp* kept;
    a record whose digest or mode is malformed keeps nothing.
    """
    return {
        record[0]: (record[1], record[2])
        for record in stamp.outputs
        if isinstance(record, tuple)
        and len(record) == 3
        and is_digest(record[1])
        and type(record[2]) is int
    }


def refuse_directories(outs: tuple[str, ...]) -> None:
    """
    Refuse outputs that are directories: only files' contents are kept.

    Raises:
        IsADirectoryError: one of *outs* is a directory.
    """
    for path in outs:
        if os.path.isdir(path):
            raise IsADirectoryError(
                errno.EISDIR,
                "jobstamps keeps the contents of output files for "
                "restore_outputs, and this output is a directory: list the "
                "files in it as outputs instead",
                path,
            )


def record(root: str, outs: tuple[str, ...]) -> Outputs:
    """
    ``(path, sha256, mode)`` of every output, keeping a copy of each that
    exists so that a later hit can write it back; missing ones get no digest.

    Raises:
        IsADirectoryError: an output is a directory.
        OSError: an output can't be read, or its copy can't be written.
    """
    refuse_directories(outs)
    records: list[tuple[str, str | None, int]] = []
    for path in outs:
        try:
            digest, mode = _keep(root, path)
        except FileNotFoundError:
            records.append((path, None, 0))
        else:
            records.append((path, digest, mode))
    return tuple(records)


def restorable(root: str, remote: RemoteOpener, stamp: Stamp) -> Callable[[str], bool]:
    """
    Whether a missing output of *stamp* could be written back: its contents
    are kept here, or in the store *remote* returns (asked only then).

    A call and ``out_of_date`` both ask this; only a copy found corrupt or a
    download that fails when the call restores can make them disagree.
    """
    recorded = kept(stamp)

    def can_restore(path: str) -> bool:
        entry = recorded.get(path)
        if entry is None:
            return False
        if os.path.exists(blob_path(root, entry[0])):
            return True
        opened = remote()
        return opened is not None and opened.exists(blob_key(entry[0]))

    return can_restore


def restore(
    root: str, remote: RemoteOpener, stamp: Stamp, outs: tuple[str, ...]
) -> str | None:
    """
    Write back every missing output in *outs* whose contents *stamp* kept,
    from the local copy, else from the store *remote* returns (asked only
    then).

    Returns:
        The first output still missing, or None.
    """
    recorded = kept(stamp)
    for path in outs:
        if os.path.exists(path) or path not in recorded:
            continue
        digest, mode = recorded[path]
        try:
            _restore_one(root, remote, path, digest, mode)
        except OSError as e:
            _log.debug("could not restore the output %s: %s", path, e)
    return next((path for path in outs if not os.path.exists(path)), None)


def is_cache(root: str) -> bool:
    """
    Whether *root* is a jobstamps cache: it holds a ``CACHEDIR.TAG`` or a
    stamp file (of any format version), or nothing jobstamps would not have
    made (an emptied cache is still one).
    """
    if _fs.is_tagged_cache_dir(root):
        return True
    foreign = False
    for path, _ in stamp_files(root):
        if is_stamp_file(path):
            return True
        foreign = foreign or not _made_here(root, path)
    return not foreign


def _made_here(root: str, path: str) -> bool:
    # Kept contents in their place, the lock files of stamps, statistics.
    from ._layout import is_stamp_name
    from ._lock import LOCK_SUFFIX
    from ._statsfile import is_stats_file

    folder, name = os.path.split(path)
    if folder == root and is_stats_file(name):
        return True
    if is_digest(name):
        return path == blob_path(root, name)
    stamp = name[: -len(LOCK_SUFFIX)]
    return name.endswith(LOCK_SUFFIX) and is_stamp_name(stamp, folder)


def collect(root: str, *, checked: bool = False) -> tuple[int, int] | None:
    """
    Remove the kept contents under *root* that no stamp names any more,
    except those kept in the last minutes (a job that just kept its outputs
    may not have written its stamp yet), and the temporary files of writes
    abandoned as long ago.

    Only files named as jobstamps names kept contents
    (``blobs/ab/<64 hex digits>``) and its temporary files are removed, and
    only in a jobstamps cache (:func:`is_cache`; *checked*: the caller found
    it to be one, before removing its stamps).

    Returns:
        How many files were removed, and their total size; None, having
        removed nothing, if *root* is not a jobstamps cache.
    """
    import time

    if not checked and not is_cache(root):
        return None
    folder = os.path.join(root, BLOBS)
    if not os.path.isdir(folder):
        return 0, 0
    named: set[str] = set()
    for path, _ in stamp_files(root):
        if path.startswith(folder + os.sep):
            continue
        try:
            stamp = read_head(path)  # its outputs: never its result
        except (OSError, StampFormatError):
            continue
        named.update(digest for digest, _ in kept(stamp).values())
    too_new = time.time_ns() - _fs.TEMP_MAX_AGE_NS
    count = size = 0
    for path, st in stamp_files(folder):
        name = os.path.basename(path)
        if (
            not is_digest(name)
            or path != blob_path(root, name)
            or name in named
            or st.st_mtime_ns > too_new
        ):
            continue
        try:
            os.unlink(path)
        except OSError:
            continue
        count += 1
        size += st.st_size
    sweep(root)
    return count, size


def sweep(root: str) -> None:
    """
    Remove the temporary files that killed writers left among the kept
    contents under *root* (:func:`._fs.sweep`: only those old enough).
    """
    folder = os.path.join(root, BLOBS)
    _fs.sweep(folder)
    try:
        subfolders = [e.path for e in os.scandir(folder) if e.is_dir()]
    except OSError:
        return
    for subfolder in subfolders:
        _fs.sweep(subfolder)


def upload(remote: RemoteStore, root: str, digest: str) -> None:
    """
    Put the contents *digest* kept under *root* into *remote*, unless it
    holds them already and they are not known to be bad there.
    """
    key = blob_key(digest)
    if digest not in _bad_remote and remote.exists(key):
        return
    remote.put_file(key, blob_path(root, digest))
    _bad_remote.discard(digest)


def _keep(root: str, source: str) -> tuple[str, int]:
    """
    Keep a copy of the file at *source*, named by its contents (kept once).

    Returns:
        The SHA-256 of the contents, and the file's permission bits.

    Raises:
        OSError: *source* can't be read or the copy can't be written.
    """
    folder = f"{root}{os.sep}{BLOBS}"
    _fs.make_private_dirs(folder)
    with (
        open(source, "rb") as src,
        _fs.AtomicFile(os.path.join(folder, "new"), 0o666) as copy,
    ):
        mode = stat_module.S_IMODE(os.fstat(src.fileno()).st_mode)
        digest = _fs.sha256_fd(src.fileno(), copy=copy.file)
        target = blob_path(root, digest)
        _fs.make_private_dirs(os.path.dirname(target))
        # Always replaced, though a copy may be there already: that copy may
        # have been overwritten with junk, and this one is known good. The
        # copy is made either way; renaming it over the old one costs 0.5 ms
        # per MiB more than throwing it away (ext4 flushes a file renamed
        # over another), on a run whose output was kept before.
        copy.commit(target)
    # What killed writers left where this one wrote, as a stamp's save does.
    _fs.sweep(folder)
    _fs.sweep(os.path.dirname(target))
    return digest, mode


def _restore_one(
    root: str, remote: RemoteOpener, path: str, digest: str, mode: int
) -> None:
    if _copy_verified(blob_path(root, digest), digest, path, mode):
        _log.debug("restored the output %s from the local cache", path)
        return
    opened = remote()
    if opened is None:
        return
    if _download(root, opened, digest) and _copy_verified(
        blob_path(root, digest), digest, path, mode
    ):
        _log.debug("restored the output %s from %s", path, opened.url)


def _download(root: str, remote: RemoteStore, digest: str) -> bool:
    """
    Fetch the contents *digest* from *remote* into the local cache, if that
    is what the remote holds.
    """
    target = blob_path(root, digest)
    _fs.make_private_dirs(os.path.dirname(target))
    temporary = _fs.temporary_name(target)
    try:
        if not remote.get_file(blob_key(digest), temporary):
            return False
        actual = _fs.sha256_file(temporary)
        if actual != digest:
            _bad_remote.add(digest)
            _log.debug(
                "discarding %s from %s: its sha256 is %s",
                blob_key(digest),
                remote.url,
                actual,
            )
            return False
        os.replace(temporary, target)
        return True
    except OSError as e:
        _log.debug("could not keep fetched contents %s: %s", digest, e)
        return False
    finally:
        _fs.quietly(os.unlink, temporary)


def _copy_verified(source: str, digest: str, destination: str, mode: int) -> bool:
    """
    Copy *source* to *destination* if its SHA-256 is *digest*, streaming,
    through an :class:`~._fs.AtomicFile` beside *destination*.

    Returns:
        False, leaving *destination* as it was, if *source* is missing or its
        contents don't match (a corrupt *source* is removed).

    Raises:
        OSError: *destination* can't be written.
    """
    if not os.path.exists(source):
        return False
    destination = os.path.abspath(destination)
    os.makedirs(os.path.dirname(destination), exist_ok=True)  # the user's own
    with open(source, "rb") as src, _fs.AtomicFile(destination, 0o666) as copy:
        copied = _fs.sha256_fd(src.fileno(), copy=copy.file)
        if copied != digest:
            _log.debug("removing %s: its contents don't match their name", source)
            _fs.quietly(os.unlink, source)
            return False
        os.chmod(copy.name, mode)
        copy.commit()
    return True
