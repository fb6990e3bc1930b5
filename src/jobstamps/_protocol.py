"""
:class:`Method`: the protocol every freshness method satisfies.

A ``typing.Protocol``, checkable with ``isinstance`` at run time. It lives
apart from :mod:`._methods` because importing typing costs more than a cached
``jobstamp`` run may spend: only ``jobstamps.Method`` and type checkers import
this module. Knows the shape of a method and of a fingerprint; knows nothing
of files or stamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    import os

Fingerprint: TypeAlias = (
    "tuple[int | None, int, str | None, int, int | None, int | None]"
)
"""
``(mtime_ns, size, digest, taken_ns, ctime_ns, inode)`` of one dependency:
its stat signature (what git's index compares: modification and change
times, inode and size), a content digest or ``None``, and when the
fingerprint was taken.

A stat signature proves something only on the machine that took it: a
fingerprint from another machine has ``None`` for its times and inode, which
match no file, so its file is read here. The device number is left out, as
git leaves it out by default: it changes across reboots and remounts of
network, overlay and btrfs filesystems, which would make every stamp stale.
"""


@runtime_checkable
class Method(Protocol):
    """
    Decides whether a dependency changed since a stamp was written.

    Implementations don't inherit from this class; any object with these two
    methods will do (``isinstance(obj, Method)`` tells). Both receive the
    path as the user listed it and a fresh ``os.stat`` of it (following
    symlinks), so they need not stat it again.
    """

    def fingerprint(self, path: str, stat: os.stat_result) -> Fingerprint:
        """
        Describe the file at *path* before the job runs.

        Returns:
            ``(mtime_ns, size, digest, taken_ns, ctime_ns, inode)``, where
            *digest* may be ``None`` for methods that don't read contents.
            jobstamps compares these fields itself only for its built-in
            methods; another method gets back whatever it returned.
        """
        ...

    def check(
        self, path: str, stat: os.stat_result, recorded: Fingerprint
    ) -> Fingerprint | None:
        """
        Compare the file at *path* with the fingerprint a stamp recorded.

        Returns:
            ``None`` if the file changed. Otherwise the fingerprint to keep:
            *recorded* itself, or a fresher one (say, with a new mtime for a
            file touched without changing), which jobstamps writes back so
            that the next check is cheap.
        """
        ...
