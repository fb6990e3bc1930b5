"""
Moving stamps and output files between this machine and a remote store.

A stamp is shareable when nothing in it depends on the machine: its
dependencies and outputs are named relative to the project root (so two
checkouts in different folders agree), and every dependency has a content
digest. Stat signatures prove something only on the machine that took them:
they are left out of what is published, and taken out of whatever is
fetched, so a fetched stamp's files are read here and its local copy
records this machine's signatures. Every name and digest of a fetched entry
is checked before it is used. Output files are kept by content
(:mod:`._outputs`), so a hit can write them back instead of running.

This module only translates and copies; whether a stamp is fresh is decided
by :mod:`._freshness`, through the core's decision that :func:`fetch` is
handed. It is imported only when a remote store is asked for.
"""

from __future__ import annotations

import os
import time

from . import _config, _log, _methods, _outputs
from ._freshness import Miss
from ._layout import function_folder
from ._stampfile import Pickling, Stamp, StampFormatError, pack, unpack, write

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
        # Another machine's clock may run ahead: the local copy is no younger
        # than now, and ages from here on.
        min(stamp.created_ns, time.time_ns()),
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
    problem = _malformed(shared)
    if problem is not None:
        _log.debug("ignoring the remote stamp %s: %s", key, problem)
        return None
    # Whatever stat signatures it holds were taken elsewhere: dropped, so
    # that every file is read here.
    fingerprints = {
        name: None if fp is None else _methods.portable(fp)
        for name, fp in shared.dependencies
    }
    if sorted(fingerprints) != sorted(names):
        _log.debug("ignoring the remote stamp %s: it has other dependencies", key)
        return None
    by_name = {r[0]: r for r in shared.outputs}
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


def _malformed(stamp: Stamp) -> str | None:
    """
    What is wrong with the shape of a stamp from a remote store, or None:
    every name a relative path inside the project, every digest 64 hex
    digits, every size and mode a number.
    """
    if type(stamp.created_ns) is not int or type(stamp.duration_ns) is not int:
        return "malformed times"
    for entry in stamp.dependencies:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            return "a malformed dependency"
        name, fp = entry
        if not _is_portable_name(name):
            return f"a dependency named {name!r}"
        if fp is not None and not (
            isinstance(fp, tuple)
            and len(fp) == 6
            and type(fp[1]) is int
            and (fp[2] is None or _outputs.is_digest(fp[2]))
        ):
            return f"a malformed fingerprint of {name!r}"
    for output in stamp.outputs:
        if not (isinstance(output, tuple) and len(output) == 3):
            return "a malformed output"
        name, digest, mode = output
        if not _is_portable_name(name):
            return f"an output named {name!r}"
        if digest is not None and not _outputs.is_digest(digest):
            return f"an output digest {digest!r}"
        if type(mode) is not int:
            return f"a malformed mode of {name!r}"
    return None


def _is_portable_name(name: object) -> bool:
    """
    Whether *name* is a path as :func:`portable` makes them: relative, with
    ``/`` separators, and no empty, ``.`` or ``..`` part.
    """
    return (
        isinstance(name, str)
        and not name.startswith("/")
        and "\0" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def shares(method: object) -> bool:
    """
    Whether stamps made with *method* are shared through a remote store:
    only :class:`~jobstamps.HashMethod`'s, whose every fingerprint holds a
    digest (:class:`~jobstamps.MTimeMethod` keeps digests of racily clean
    files only).
    """
    return isinstance(method, _methods.HashMethod)


def local_only(
    dependencies: Dependencies, outputs: tuple[str, ...], root: str
) -> str | None:
    """
    Why a stamp of these *dependencies* (paths and fingerprints) and
    *outputs* stays on this machine, or None if it is shared.
    """
    deps = tuple(path for path, _ in dependencies)
    if portable(deps, root) is None or portable(outputs, root) is None:
        return f"a file is outside the project root {root}"
    if any(fp is None or fp[2] is None for _, fp in dependencies):
        return "dependencies compared by mtime are local"
    return None


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
    outs = tuple(r[0] for r in stamp.outputs)
    reason = local_only(stamp.dependencies, outs, root)
    if reason is not None:
        _log.debug("not sharing %s: %s", key, reason)
        return
    names = portable(tuple(path for path, _ in stamp.dependencies), root)
    out_names = portable(outs, root)
    assert names is not None and out_names is not None
    for _, digest, _ in stamp.outputs:
        if digest:
            _outputs.upload(remote, cache_root, digest)
    shared = Stamp(
        stamp.created_ns,
        stamp.duration_ns,
        tuple(
            (name, None if fp is None else _methods.portable(fp))
            for name, (_, fp) in zip(names, stamp.dependencies, strict=True)
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
