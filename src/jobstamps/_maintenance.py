"""
Removing stamps in bulk: :func:`prune` (``jobstamps.prune()`` and
``jobstamp cache prune``) and :func:`clear_stamps` (``jobstamp cache
clear``), each returning what it removed as a :class:`Pruned`.

Stamp files are found, read and removed through :mod:`._store` (only stamp
files, each under its lock, so that a job running for it finishes first),
ages are counted as :mod:`._freshness` counts them for a time to live, and
kept output contents that no stamp names any more are collected by
:mod:`._outputs`. Knows nothing of the command line; never imported by a
call.
"""

from __future__ import annotations

import errno
import os
import time

import attrs

from . import _config
from ._controls import duration_ns
from ._freshness import born_ns
from ._outputs import collect, is_cache
from ._stampfile import StampFormatError
from ._store import is_stamp_file, read_head, remove_stamp, stamp_files
from .exceptions import CacheDirError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime


@attrs.frozen
class Pruned:
    """
    What a prune (or a clear) removed from a cache directory, and left.

    Attributes:
        removed: Stamps removed.
        removed_bytes: Their total size.
        outputs: Kept output files (``restore_outputs``) removed because no
            stamp left names them.
        output_bytes: Their total size.
        left: Stamps left.
        left_bytes: Their total size.
        failed: ``(path, reason)`` of each stamp that could not be removed
            (it is counted as left).
    """

    removed: int
    removed_bytes: int
    outputs: int
    output_bytes: int
    left: int
    left_bytes: int
    failed: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class _Entry:
    path: str
    size: int
    mtime_ns: int
    # Counted from when its run started, as for a time to live.
    age_ns: int


def prune(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    older_than: float | datetime.timedelta | None = None,
    max_size: int | None = None,
) -> Pruned:
    """
    Remove the stamps older than *older_than*, then the oldest ones until
    the rest take at most *max_size* bytes, from *cache_dir* (default
    ``$JOBSTAMPS_CACHE_DIR``, else the user's cache directory): those of
    functions and of commands alike. Only stamp files are removed, each
    under its lock; then the kept output contents no stamp names any more.

    Args:
        older_than: Seconds, or a :class:`datetime.timedelta`; a stamp's age
            counts from when its run started, as for *ttl*.
        max_size: Bytes.

    Returns:
        What was removed and what is left.

    Raises:
        TypeError: Neither *older_than* nor *max_size* is given, or one is
            of the wrong kind.
        ValueError: One is negative.
        jobstamps.exceptions.CacheDirError: *cache_dir* is not a jobstamps
            cache (no stamp, no ``CACHEDIR.TAG``, and files jobstamps did
            not make): nothing is removed.
    """
    if older_than is None and max_size is None:
        raise TypeError("jobstamps.prune() needs older_than, max_size or both")
    max_age_ns = None if older_than is None else duration_ns(older_than, "older_than")
    if max_size is not None:
        if not isinstance(max_size, int) or isinstance(max_size, bool):
            raise TypeError(
                f"jobstamps: max_size must be bytes (an int), not {max_size!r}"
            )
        if max_size < 0:
            raise ValueError(f"jobstamps: max_size={max_size} can't be negative")
    if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
        raise TypeError(f"jobstamps: cache_dir must be a path, not {cache_dir!r}")
    root = (
        os.fspath(cache_dir) if cache_dir is not None else _config.default_cache_dir()
    )
    return prune_stamps(os.path.abspath(root), None, max_age_ns, max_size)


def prune_stamps(
    root: str, function: str | None, max_age_ns: int | None, max_bytes: int | None
) -> Pruned:
    """
    :func:`prune` in the cache directory *root*, of *function*'s stamps only
    when it is given.
    """
    _refuse_foreign(root)
    entries = _entries(root, function)
    doomed = [e for e in entries if max_age_ns is not None and e.age_ns > max_age_ns]
    if max_bytes is not None:
        old = {e.path for e in doomed}
        kept = sorted(
            (e for e in entries if e.path not in old), key=lambda e: e.mtime_ns
        )
        total = sum(e.size for e in kept)
        for entry in kept:
            if total <= max_bytes:
                break
            doomed.append(entry)
            total -= entry.size
    return _remove(root, entries, doomed)


def clear_stamps(root: str, function: str | None) -> Pruned:
    """
    Remove every stamp in the cache directory *root*, or only *function*'s.
    """
    _refuse_foreign(root)
    entries = _entries(root, function, read=False)
    return _remove(root, entries, entries)


def _refuse_foreign(root: str) -> None:
    """
    Raises:
        CacheDirError: *root* is a folder, but not a jobstamps cache: it
            holds no stamp and no ``CACHEDIR.TAG``, and files jobstamps
            did not make. Nothing there is jobstamps' to remove.
    """
    if os.path.isdir(root) and not is_cache(root):
        raise CacheDirError(
            errno.ENOTDIR,
            f"{root} holds no jobstamps stamps and no CACHEDIR.TAG, but other "
            "files, so it is not a jobstamps cache: nothing removed",
            root,
        )


def _entries(root: str, function: str | None, read: bool = True) -> list[_Entry]:
    now = time.time_ns()
    entries = []
    for path, stat in stamp_files(root, function):
        if not is_stamp_file(path):
            continue  # not ours: never delete it
        born = stat.st_mtime_ns
        if read:
            try:
                born = born_ns(read_head(path), born)
            except (OSError, StampFormatError):
                pass  # aged by its file alone
        entries.append(_Entry(path, stat.st_size, stat.st_mtime_ns, now - born))
    return entries


def _remove(root: str, entries: list[_Entry], doomed: list[_Entry]) -> Pruned:
    removed = removed_bytes = 0
    failed = []
    for entry in doomed:
        try:
            remove_stamp(entry.path, root)
        except OSError as e:
            failed.append((entry.path, e.strerror or str(e)))
            continue
        removed += 1
        removed_bytes += entry.size
    gone = {entry.path for entry in doomed} - {path for path, _ in failed}
    left = [e for e in entries if e.path not in gone]
    outputs, output_bytes = collect(root, checked=True) or (0, 0)
    return Pruned(
        removed=removed,
        removed_bytes=removed_bytes,
        outputs=outputs,
        output_bytes=output_bytes,
        left=len(left),
        left_bytes=sum(e.size for e in left),
        failed=tuple(failed),
    )
