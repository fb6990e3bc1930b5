"""
:class:`FsspecStore`: remote entries as objects on any fsspec filesystem
(``file://``, ``memory://``, ``s3://``, ``gs://``...).

Private to :mod:`jobstamps.remote`; knows nothing of stamps. fsspec is
imported when a store is made.
"""

from __future__ import annotations

import contextlib
import typing
import urllib.parse

from .. import _fs
from ..exceptions import RemoteStoreError
from ._common import CHUNK, EXTRAS, missing_driver, read_chunks, redact

if typing.TYPE_CHECKING:
    from collections.abc import Iterable

# Filesystems where renaming a file is atomic: a put writes a temporary object
# and moves it in place. Object stores publish an upload only once it is
# complete, and have no cheap rename, so they are written directly. memory://
# publishes a file as soon as it is opened, so it is written aside too.
_RENAMING_PROTOCOLS = frozenset({"file", "local", "sftp", "ssh", "memory"})


class FsspecStore:
    """
    Entries as objects at ``<url>/<key>`` on any fsspec filesystem:
    ``file://``, ``memory://``, ``s3://bucket/prefix``, ``gs://...``.
    """

    def __init__(self, url: str, **storage_options: typing.Any) -> None:
        """
        Args:
            url: Where the entries go; its path is the prefix of every key.
            storage_options: Passed to the filesystem (credentials, endpoint,
                ``config_kwargs`` for s3fs...).

        Raises:
            RemoteStoreError: fsspec, or the driver for *url*, is not
                installed.
        """
        try:
            import fsspec.core
        except ImportError:
            raise missing_driver("fsspec", "fsspec", url) from None
        scheme = urllib.parse.urlsplit(url).scheme
        try:
            self._fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as e:
            raise missing_driver(scheme, EXTRAS.get(scheme, "fsspec"), url, e) from None
        except ValueError as e:
            raise RemoteStoreError(
                f"jobstamps: can't open remote store {redact(url)!r}: {e}"
            ) from None
        self.url = redact(url)
        self._root = str(root).rstrip("/")
        protocols = self._fs.protocol
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        self._rename = not _RENAMING_PROTOCOLS.isdisjoint(protocols)

    @property
    def filesystem(self) -> typing.Any:
        """
        The fsspec filesystem the entries are on.
        """
        return self._fs

    def path(self, key: str) -> str:
        """
        Where the entry of *key* is on the filesystem.

        Raises:
            ValueError: *key* has an empty, ``.`` or ``..`` segment, which
                could reach outside the store.
        """
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"jobstamps: invalid remote key {key!r}")
        return f"{self._root}/{key}"

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(self._fs.cat_file(self.path(key)))
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        view = memoryview(data)
        self._publish(
            self.path(key),
            (view[start : start + CHUNK] for start in range(0, len(view), CHUNK)),
        )

    def put_file(self, key: str, path: str) -> None:
        target = self.path(key)
        with open(path, "rb") as file:
            self._publish(target, read_chunks(file))

    def _publish(self, path: str, chunks: Iterable[bytes | memoryview]) -> None:
        if not self._rename:
            self._write(path, chunks)
            return
        self._fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        temporary = _fs.temporary_name(path)
        try:
            self._write(temporary, chunks)
            self._fs.mv(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                self._fs.rm_file(temporary)
            raise

    def _write(self, path: str, chunks: Iterable[bytes | memoryview]) -> None:
        # In chunks, so that object stores can upload in parts as they go.
        file = self._fs.open(path, "wb")
        try:
            for chunk in chunks:
                file.write(chunk)
        except BaseException:
            # Closing would publish what was written so far: throw it away
            # instead (s3fs aborts its multipart upload), and mark the file
            # closed so that its __del__ does not commit it either.
            with contextlib.suppress(Exception):
                file.discard()
                file.closed = True
            raise
        file.close()

    def get_file(self, key: str, path: str) -> bool:
        try:
            file = self._fs.open(self.path(key), "rb", block_size=CHUNK)
        except FileNotFoundError:
            return False
        with file:
            # Created as open() would: mode 0o666 less the umask.
            _fs.write_atomically(path, read_chunks(file), 0o666)
        return True

    def exists(self, key: str) -> bool:
        # Not fs.exists, which answers False for any error: a remote that is
        # down must fail here, for the guard to see it.
        try:
            self._fs.info(self.path(key))
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(self.path(key))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"
