"""
How stamps are laid out on disk, and which files that layout names: a
folder per function (:func:`function_folder`), stamps named by their digest
and fanned out by its first digits (:func:`is_stamp_name`), and the files
found under a cache directory (:func:`stamp_files`, :func:`is_stamp_file`).

:func:`remove_own_files` removes only files this layout names, with their
lock and temporary files: jobstamps deletes nothing it did not make. This
module knows names and the first bytes of a stamp file, not what a stamp
holds.
"""

from __future__ import annotations

import os

from . import _fs
from ._key import blake2b
from ._stampfile import is_stamp


def function_folder(function: str) -> str:
    """
    The folder name for *function*'s stamps: readable, and unique by digest.
    """
    readable = "".join(c if c.isalnum() or c in "._-" else "_" for c in function)
    suffix = blake2b(
        function.encode("utf-8", "surrogatepass"), digest_size=8
    ).hexdigest()
    return f"{readable[-48:]}-{suffix}"


def is_stamp_name(name: str, folder: str) -> bool:
    """
    Whether a file *name* in *folder* is named as this store names stamps:
    a hex digest, in the folders of its first two pairs of digits.
    """
    if len(name) < 32 or not all(c in "0123456789abcdef" for c in name):
        return False
    parent, second = os.path.split(folder)
    return second == name[2:4] and os.path.basename(parent) == name[:2]


def remove_own_files(folder: str) -> None:
    """
    Remove the stamps under a function's *folder*, their lock files and the
    temporary files of writes, then the folders left empty.
    """
    from ._lock import LOCK_SUFFIX

    for current, _, names in os.walk(folder, topdown=False):
        for name in names:
            stamp = name[: -len(LOCK_SUFFIX)] if name.endswith(LOCK_SUFFIX) else name
            if is_stamp_name(stamp, current) or _fs.is_temporary(name):
                _fs.quietly(os.unlink, os.path.join(current, name))
        _fs.quietly(os.rmdir, current)


def stamp_files(
    root: str, function: str | None = None
) -> list[tuple[str, os.stat_result]]:
    """
    Every file under *root* with its ``lstat``, or only under *function*'s
    folder: the stamps, and whatever else is there (:func:`is_stamp_file`
    tells them apart).

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
            elif entry.is_file(follow_symlinks=False) and not _fs.is_temporary(
                entry.name
            ):
                try:
                    found.append((entry.path, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
    return found


def is_stamp_file(path: str) -> bool:
    """
    Whether the file at *path* is a stamp file of any format version; only
    those are ever listed or removed.
    """
    try:
        with open(path, "rb") as file:
            return is_stamp(file.read(16))
    except OSError:
        return False
