"""
Kept output contents: output files copied aside when a job runs, so that a
hit whose outputs are missing writes them back instead of running.

Contents are kept by SHA-256, locally as ``<cache>/blobs/ab/<digest>`` and
remotely under ``blobs/<digest>``; a stamp records ``(path, digest, mode)``
for each output. Files are streamed, never held whole, and every copy is
checked against its digest before it is used. The same code serves the local
cache and a remote store (asked only when the local copy is missing).

This module is imported only for jobs with *restore_outputs*, and by cache
maintenance. It does not decide freshness; :mod:`._freshness` asks it only
whether a missing output could be written back.
"""

from __future__ import annotations

import os
import stat as stat_module

from . import _fs, _log
from ._stampfile import StampFormatError
from ._store import read_stamp, stamp_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._stampfile import Outputs, Stamp
    from .remote import RemoteStore

    RemoteOpener = Callable[[], RemoteStore | None]

BLOBS = "blobs"


def blob_path(root: str, digest: str) -> str:
    """
    Where the contents with SHA-256 *digest* are kept under the cache *root*.
    """
    return f"{root}{os.sep}{BLOBS}{os.sep}{digest[:2]}{os.sep}{digest}"


def blob_key(digest: str) -> str:
    """
    The remote key of the contents with SHA-256 *digest*.
    """
    return f"{BLOBS}/{digest}"


def kept(stamp: Stamp) -> dict[str, tuple[str, int]]:
    """
    ``{path: (sha256, mode)}`` of the outputs whose contents *stamp* kept.
    """
    return {
        record[0]: (record[1], record[2])
        for record in stamp.outputs
        if isinstance(record, tuple) and record[1]
    }


def record(root: str, outs: tuple[str, ...]) -> Outputs:
    """
    ``(path, sha256, mode)`` of every output, keeping a copy of each that
    exists so that a later hit can write it back; missing ones get no digest.
    """
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


def collect(root: str) -> tuple[int, int]:
    """
    Remove the kept contents under *root* that no stamp names any more,
    except those kept in the last minutes (a job that just kept its outputs
    may not have written its stamp yet).

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
        named.update(digest for digest, _ in kept(stamp).values())
    too_new = time.time_ns() - _fs.TEMP_MAX_AGE_NS
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
        if not os.path.exists(target):
            _fs.make_private_dirs(os.path.dirname(target))
            copy.commit(target)
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
            _log.debug("discarding fetched contents: sha256 %s, not %s", actual, digest)
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
