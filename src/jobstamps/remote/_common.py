"""
What the remote stores share: the :class:`RemoteStore` protocol they follow
(public as ``jobstamps.remote.RemoteStore``) and the :class:`RemoteLeases`
protocol of those that can hold leases, their defaults, URL redaction, one
warning per store and kind, chunked reading, and the error of a transfer gone
wrong.

Private to :mod:`jobstamps.remote`; knows nothing of stamps.
"""

from __future__ import annotations

import threading
import typing
import urllib.parse
import warnings

from .. import _log
from ..exceptions import JobstampsWarning, RemoteStoreError

if typing.TYPE_CHECKING:
    from collections.abc import Iterable

SECRET_ENV = "JOBSTAMPS_SECRET"
DEFAULT_TIMEOUT = 1.0
DEFAULT_DEADLINE = 10.0
# Files are read, written and sent in chunks of this many bytes.
CHUNK = 1 << 20
# The extra of jobstamps that installs the driver of a URL scheme.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}

# (kind, url) of every store that has already warned in this process.
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


class RemoteStore(typing.Protocol):
    """
    Where stamps are shared between machines: bytes under string keys.

    Keys look like ``"<function folder>/<hex digest>"``. Implementations don't
    inherit from this class; they only need its methods and *url*.
    """

    @property
    def url(self) -> str:
        """
        Where the store is, for messages: never holds a password.
        """

    def get(self, key: str) -> bytes | None:
        """
        The bytes stored under *key*, or None if there are none.
        """

    def put(self, key: str, data: bytes) -> None:
        """
        Store *data* under *key*, replacing what was there.
        """

    def delete(self, key: str) -> None:
        """
        Remove what is stored under *key*, if anything.
        """

    def exists(self, key: str) -> bool:
        """
        Whether something is stored under *key*, without reading it.
        """

    def put_file(self, key: str, path: str) -> None:
        """
        Store the content of the local file *path* under *key*, in chunks.

        Readers see the whole file under *key* or what was there before,
        never part of it.
        """

    def get_file(self, key: str, path: str) -> bool:
        """
        Write what is stored under *key* to the local file *path*, in chunks.

        *path* is replaced only once the whole content has arrived; a failed
        download leaves it as it was. Returns False, and writes nothing, if
        there is nothing under *key*.
        """

    def close(self) -> None:
        """
        Release connections; the store is not used afterwards.
        """


class RemoteLeases(typing.Protocol):
    """
    What a remote store offers, beside :class:`RemoteStore`, to hold leases:
    one holder at a time per key, for a time-to-live the holder renews.

    Optional: jobstamps uses leases only when a store has all four methods.
    Every change is atomic on the server. *owner* is a caller's own string,
    unique to one acquisition; *ttl* is in seconds. Lease keys live apart
    from entries: a lease on *key* never reads or replaces the entry *key*.
    """

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """
        Take the lease on *key* for *owner*, expiring after *ttl* seconds,
        if nobody holds it; whether it was taken.
        """

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        """
        Make the lease on *key* expire *ttl* seconds from now, if *owner*
        still holds it; whether it does.
        """

    def release_lease(self, key: str, owner: str) -> None:
        """
        Give the lease on *key* up, if *owner* still holds it.
        """

    def lease_holder(self, key: str) -> str | None:
        """
        The owner holding the lease on *key*, or None.
        """


class LeasingStore(RemoteStore, RemoteLeases, typing.Protocol):
    """
    A remote store that holds leases.
    """


LEASE_METHODS = ("acquire_lease", "renew_lease", "release_lease", "lease_holder")


def has_leases(store: object) -> typing.TypeGuard[LeasingStore]:
    """
    Whether *store* offers every method of :class:`RemoteLeases`.
    """
    return all(callable(getattr(store, name, None)) for name in LEASE_METHODS)


class RemoteStoreIOError(OSError):
    """
    A file transfer found the remote entry changed or gone midway.
    """


def redact(url: str) -> str:
    """
    *url* without the password it may hold, for messages.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def warn_once(kind: str, url: str, message: str) -> None:
    """
    Warn once per process for this store and *kind*, naming the user's line
    (the first frame outside jobstamps); log every time.
    """
    _log.debug("%s", message)
    with _warned_lock:
        if (kind, url) in _warned:
            return
        _warned.add((kind, url))
    warnings.warn(message, JobstampsWarning, stacklevel=_log.caller_stacklevel())


def read_chunks(file: typing.BinaryIO) -> Iterable[bytes]:
    while chunk := file.read(CHUNK):
        yield chunk


def missing_driver(
    driver: str, extra: str, url: str, error: object = None
) -> RemoteStoreError:
    detail = f" ({error})" if error else ""
    return RemoteStoreError(
        f"jobstamps: the remote store {redact(url)!r} needs {driver}, which is not installed"
        f"{detail}; pip install 'jobstamps[{extra}]'"
    )
