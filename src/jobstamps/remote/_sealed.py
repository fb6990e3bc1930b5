"""
Signed remote entries: the envelope (HMAC-SHA256 under a secret) and
:class:`SealedStore`, which seals what it puts and checks what it gets;
:class:`SealedLeasingStore` passes leases through, unsigned.

Private to :mod:`jobstamps.remote`; knows nothing of stamps or backends.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import typing

from .. import _fs
from ._common import SECRET_ENV, has_leases, warn_once

if typing.TYPE_CHECKING:
    from collections.abc import Callable

    from ._common import LeasingStore, RemoteStore

# Envelope of a remote entry:
#   MAGIC (4) | version (1) | kind (1) | HMAC-SHA256 tag (32, signed only) | data
# The tag covers the header, the key (length-prefixed) and the data, so an
# entry copied under another key, or relabelled as unsigned, fails the check.
MAGIC = b"JSRE"
ENVELOPE_VERSION = 1
SIGNED = b"S"
UNSIGNED = b"U"
_SIGNED_HEADER = MAGIC + bytes([ENVELOPE_VERSION]) + SIGNED
_UNSIGNED_HEADER = MAGIC + bytes([ENVELOPE_VERSION]) + UNSIGNED
_HEADER_SIZE = len(_SIGNED_HEADER)
_TAG_SIZE = hashlib.sha256().digest_size


def seal(secret: bytes | None, key: str, data: bytes | memoryview) -> bytes:
    """
    *data* in an envelope signed for *key* with *secret*.

    With no *secret* (only for a store the user trusts), the envelope says it
    is unsigned, so that a reader with a secret rejects it.
    """
    if secret is None:
        return b"".join((_UNSIGNED_HEADER, data))
    return b"".join((_SIGNED_HEADER, _tag(secret, key, data), data))


def unseal(secret: bytes | None, key: str, blob: bytes | memoryview) -> bytes | None:
    """
    The data *blob* holds for *key*, or None unless its signature is intact.

    Returns None for anything but an envelope of this version: truncated,
    garbage, signed with another secret or for another key, and, when a
    *secret* is given, unsigned. With no *secret* (a trusted store) signed
    and unsigned entries are both accepted unchecked.
    """
    view = memoryview(blob)
    header = bytes(view[:_HEADER_SIZE])
    if header == _UNSIGNED_HEADER:
        return None if secret is not None else bytes(view[_HEADER_SIZE:])
    if header != _SIGNED_HEADER or len(view) < _HEADER_SIZE + _TAG_SIZE:
        return None
    data = view[_HEADER_SIZE + _TAG_SIZE :]
    if secret is not None:
        tag = view[_HEADER_SIZE : _HEADER_SIZE + _TAG_SIZE]
        if not hmac.compare_digest(tag, _tag(secret, key, data)):
            return None
    return bytes(data)


def _tag(secret: bytes, key: str, data: bytes | memoryview) -> bytes:
    mac = _mac(secret, key)
    mac.update(data)
    return mac.digest()


def _mac(secret: bytes, key: str) -> hmac.HMAC:
    # The tag of an entry, fed all but its data.
    mac = hmac.new(secret, _SIGNED_HEADER, hashlib.sha256)
    encoded = key.encode("utf-8", "surrogatepass")
    mac.update(len(encoded).to_bytes(4, "big"))
    mac.update(encoded)
    return mac


class Sealing:
    """
    The envelope of *key* written to *file* as data is written through this
    object, signed as it goes: the tag, which comes before the data, is put
    in its place by :meth:`finish`. What :func:`seal` makes, without the
    data ever being whole in memory.
    """

    def __init__(self, file: typing.BinaryIO, secret: bytes | None, key: str) -> None:
        self._file = file
        self._mac = None if secret is None else _mac(secret, key)
        if self._mac is None:
            file.write(_UNSIGNED_HEADER)
        else:
            file.write(_SIGNED_HEADER + bytes(_TAG_SIZE))

    def write(self, data: bytes | memoryview) -> int:
        self._file.write(data)
        if self._mac is not None:
            self._mac.update(data)
        return len(data)

    def finish(self) -> None:
        if self._mac is not None:
            self._file.seek(_HEADER_SIZE)
            self._file.write(self._mac.digest())
        self._file.flush()


class SealedStore:
    """
    A remote store whose entries are signed: HMAC-SHA256 under a secret.

    An entry with a missing or wrong signature is a miss, with one warning
    per process for this store: it was written with another secret, or by
    someone who doesn't have it. With no *secret* (a store the user trusts),
    entries are written unsigned and read unchecked.

    Files (``put_file``, ``get_file``) are not signed: they are stored under
    the SHA-256 of their content, the caller checks that digest after a
    download, and the signed stamp that names them is what vouches for
    them. They, and ``exists``, pass through to *inner* unchanged.
    """

    def __init__(self, inner: RemoteStore, secret: bytes | None) -> None:
        self.inner = inner
        self.url = inner.url
        self._secret = secret

    @property
    def signed(self) -> bool:
        return self._secret is not None

    def get(self, key: str) -> bytes | None:
        blob = self.inner.get(key)
        if blob is None:
            return None
        data = unseal(self._secret, key, blob)
        if data is None:
            warn_once(
                "unsigned",
                self.url,
                f"jobstamps: ignoring entry {key} of remote store {self.url}: its "
                f"signature does not match (written with another {SECRET_ENV}, or "
                "not by jobstamps)",
            )
        return data

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, seal(self._secret, key, data))

    def put_streamed(
        self, key: str, write: Callable[[typing.BinaryIO], None], folder: str
    ) -> None:
        """
        Store under *key*, sealed, what *write* writes to the file it is
        given: through a temporary file in *folder*, uploaded in chunks, so
        that a large entry is never whole in memory. A reader gets it with
        :meth:`get` as any entry.
        """
        with _fs.AtomicFile(os.path.join(folder, "upload"), 0o600) as temporary:
            sealing = Sealing(temporary.file, self._secret, key)
            write(sealing)  # type: ignore[arg-type]
            sealing.finish()
            self.inner.put_file(key, temporary.name)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def put_file(self, key: str, path: str) -> None:
        self.inner.put_file(key, path)

    def get_file(self, key: str, path: str) -> bool:
        return self.inner.get_file(key, path)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r}, signed={self.signed})"


class SealedLeasingStore(SealedStore):
    """
    A :class:`SealedStore` around a store that holds leases.

    Leases pass through unsigned. A lease decides nothing about results: it
    only tells others to wait a while for a stamp, and what they get is a
    signed stamp or nothing. So whoever can write to the store without the
    secret can at worst hold a lease and make others wait for it, up to
    their wait bound, before they run the job themselves.
    """

    inner: LeasingStore

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self.inner.acquire_lease(key, owner, ttl)

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        return self.inner.renew_lease(key, owner, ttl)

    def release_lease(self, key: str, owner: str) -> None:
        self.inner.release_lease(key, owner)

    def lease_holder(self, key: str) -> str | None:
        return self.inner.lease_holder(key)


def sealed(inner: RemoteStore, secret: bytes | None) -> SealedStore:
    """
    *inner* sealed: a :class:`SealedLeasingStore` if it holds leases.
    """
    kind = SealedLeasingStore if has_leases(inner) else SealedStore
    return kind(inner, secret)
