"""
Moving stamps and output files between this machine and a remote store.

A stamp is shareable when nothing in it depends on the machine: its
dependencies and outputs are named relative to the project root (so two
checkouts in different folders agree), and every dependency has a content
digest (a modification time means nothing on another machine). Output files
are kept by content (:mod:`._outputs`), so a hit can write them back instead
of running.

This module only translates and copies; whether a stamp is fresh is decided
by :mod:`._freshness`, through the core's decision that :func:`fetch` is
handed. It is imported only when a remote store is asked for.
"""

from __future__ import annotations

import os

from . import _config, _log
from ._freshness import Miss
from ._outputs import blob_key, blob_path
from ._stampfile import Pickling, Stamp, StampFormatError, pack, unpack, write
from ._store import function_folder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._freshness import Call
    from ._stampfile import Dependencies, Outputs
    from ._store import DirectoryStore
    from .remote import RemoteStore

_remotes: dict[tuple[str, object, bool], RemoteStore] = {}


def remote_for(
    spec: object, secret: bytes | str | None, trust_store: bool
) -> RemoteStore | None:
    """
    The remote store for *spec* (a URL, a store object, or None for
    ``$JOBSTAMPS_STORE``), opened once per process.

    Raises:
        jobstamps.exceptions.RemoteStoreError: the URL can't be used, or no
            secret signs its entries and *trust_store* is false.
    """
    if spec is None:
        spec = _config.store_url()
        if spec is None:
            return None
    if not isinstance(spec, str):
        return spec  # type: ignore[return-value]
    identity = (spec, secret, trust_store)
    remote = _remotes.get(identity)
    if remote is None:
        from .remote import open_remote

        remote = _remotes[identity] = open_remote(
            spec, secret=secret, trust_store=trust_store
        )
    return remote


def portable(paths: tuple[str, ...], root: str) -> tuple[str, ...] | None:
    """
    *paths* relative to *root*, with ``/`` separators; None if one is outside.
    """
    names = []
    for path in paths:
        relative = os.path.relpath(os.path.abspath(path), root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return None
        names.append(relative.replace(os.sep, "/"))
    return tuple(names)


def remote_key(function: str, stamp_path: str) -> str:
    """
    The remote key of the stamp at *stamp_path*: the function's folder and
    the digest, as the local store files them.
    """
    return f"{function_folder(function)}/{os.path.basename(stamp_path)}"


def fetch(
    remote: RemoteStore,
    store: DirectoryStore,
    call: Call,
    function: str,
    root: str,
    decide: Callable[[Stamp], tuple[object, Miss | None]],
) -> tuple[object, Miss | None]:
    """
    The result of *call*'s stamp in *remote*, as *decide* finds it, and the
    miss if it is not fresh; a fresh stamp is copied to the local *store*.

    The remote stamp names its files relative to *root*: it is renamed for
    this machine's paths first, and is a miss if it lists other files.
    """
    names, out_names = portable(call.dependencies, root), portable(call.outputs, root)
    if names is None or out_names is None:
        _log.debug(
            "not reading %s: a file is outside the project root %s", remote.url, root
        )
        return None, Miss(call.path, "no stamp")
    key = remote_key(function, call.path)
    blob = remote.get(key)
    stamp = None if blob is None else _translated(blob, key, call, names, out_names)
    if stamp is None:
        return None, Miss(call.path, "no stamp")
    result, miss = decide(stamp)
    if miss is not None:
        _log.debug(
            "ignoring the stamp from %s: %s: %s", remote.url, miss.reason, miss.path
        )
        return None, miss
    local = Stamp(
        stamp.created_ns,
        stamp.duration_ns,
        call.refreshed or stamp.dependencies,
        stamp.outputs,
        stamp.result,
        stamp.about,
        stamp.payload,
    )
    try:
        store.prepare(call.path)
        store.save(call.path, local)
    except OSError as e:
        _log.debug("could not keep the stamp from %s: %s", remote.url, e)
    return result, None


def _translated(
    blob: bytes,
    key: str,
    call: Call,
    names: tuple[str, ...],
    out_names: tuple[str, ...],
) -> Stamp | None:
    """
    The remote stamp *blob*, renamed from the portable *names* and
    *out_names* to this machine's dependencies and outputs; None if it is
    unreadable or lists other files.
    """
    deps, outs = call.dependencies, call.outputs
    try:
        shared = unpack(blob)
    except StampFormatError as e:
        _log.debug("ignoring the remote stamp %s: %s", key, e)
        return None
    fingerprints = dict(shared.dependencies)
    if sorted(fingerprints) != sorted(names):
        _log.debug("ignoring the remote stamp %s: it has other dependencies", key)
        return None
    by_name = {r[0]: r for r in shared.outputs if isinstance(r, tuple | list)}
    if sorted(by_name) != sorted(out_names):
        _log.debug("ignoring the remote stamp %s: it has other outputs", key)
        return None
    dependencies: Dependencies = tuple(
        (path, fingerprints[name]) for path, name in zip(deps, names, strict=True)
    )
    outputs: Outputs = tuple(
        (path, by_name[name][1], by_name[name][2])
        for path, name in zip(outs, out_names, strict=True)
    )
    return Stamp(
        shared.created_ns,
        shared.duration_ns,
        dependencies,
        outputs,
        shared.result,
        shared.about,
        shared.payload,
    )


def publish(
    remote: RemoteStore,
    key: str,
    cache_root: str,
    stamp: Stamp,
    root: str,
) -> None:
    """
    Upload *stamp* (and the outputs it keeps) under *key*, if it is portable.
    """
    deps = tuple(path for path, _ in stamp.dependencies)
    outs = tuple(r[0] for r in stamp.outputs)
    names, out_names = portable(deps, root), portable(outs, root)
    if names is None or out_names is None:
        _log.debug("not sharing %s: a file is outside the project root %s", key, root)
        return
    if any(fp is None or fp[2] is None for _, fp in stamp.dependencies):
        _log.debug("not sharing %s: dependencies compared by mtime are local", key)
        return
    for _, digest, _ in stamp.outputs:
        if digest and not remote.exists(blob_key(digest)):
            remote.put_file(blob_key(digest), blob_path(cache_root, digest))
    shared = Stamp(
        stamp.created_ns,
        stamp.duration_ns,
        tuple(
            (name, fp) for name, (_, fp) in zip(names, stamp.dependencies, strict=True)
        ),
        tuple(
            (name, r[1], r[2]) for name, r in zip(out_names, stamp.outputs, strict=True)
        ),
        stamp.result,
        stamp.about,
        stamp.payload,
    )
    if _small(shared):
        remote.put(key, b"".join(bytes(part) for part in pack(shared)))
        return
    # A large stamp (a command's output, a large result) goes through a file,
    # never whole in memory: signed as it is written, uploaded in chunks.
    put_streamed = getattr(remote, "put_streamed", None)
    if put_streamed is not None:
        put_streamed(key, lambda file: write(file, shared), cache_root)
        return
    from ._fs import AtomicFile

    with AtomicFile(os.path.join(cache_root, "upload"), 0o600) as temporary:
        write(temporary.file, shared)
        temporary.file.flush()
        remote.put_file(key, temporary.name)


_SMALL = 1 << 20


def _small(stamp: Stamp) -> bool:
    # Small enough to be sent from memory, in one request.
    payload = stamp.payload
    return (
        not isinstance(stamp.result, Pickling)
        and len(stamp.result) <= _SMALL
        and (payload is None or payload.size <= _SMALL)
    )
