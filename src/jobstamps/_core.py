"""
The decision and the run: the only module that combines key, method and store.

One :class:`Job` per cached function. A call is keyed (:mod:`._key`), its
stamp loaded (:mod:`._store`), its outputs and dependencies checked
(:mod:`._methods`); on a hit the stored result is returned, on a miss the
dependencies are fingerprinted, the function runs, and its result is stamped.
The decorator, the 0.0.20 ``run``/``out_of_date`` and the ``jobstamp`` command
are thin layers over this.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
import time

try:
    # The C implementation alone: the pickle module around it costs another
    # millisecond to import, a tenth of a cached `jobstamp` run's budget.
    import _pickle as pickle
except ImportError:  # pragma: no cover - other interpreters
    import pickle  # type: ignore[no-redef]

from . import _config, _log, _methods
from ._key import KeyBuilder
from ._store import (
    KEY_CONTEXT,
    DirectoryStore,
    Pickling,
    Stamp,
    StampFormatError,
    kept_outputs,
)
from .exceptions import CacheDirError, UnpicklableResultError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._methods import Fingerprint
    from ._protocol import Method
    from ._remote import RemoteStore
    from ._stampkey import StampKey
    from ._store import Dependencies, Outputs

    PathSpec = (
        Iterable[str | os.PathLike[str]]
        | Callable[..., Iterable[str | os.PathLike[str]]]
        | None
    )

DISABLED_REASON = "JOBSTAMPS_DISABLED"

# What a remote lookup returns when it found nothing usable (None is a result).
_MISSING = object()

_stores: dict[str, DirectoryStore] = {}
_HASHES = _methods.HashMethod()


def store_for(root: str) -> DirectoryStore:
    """
    The store of stamps under *root*, one per process so that all jobs share
    what it remembers.
    """
    store = _stores.get(root)
    if store is None:
        store = _stores[root] = DirectoryStore(root)
    return store


class Job:
    """
    Everything about one cached function that does not change between calls.
    """

    __slots__ = (
        "_dependencies",
        "_outputs",
        "cache_dir",
        "func",
        "keys",
        "method",
        "remote",
        "restore_outputs",
        "root",
        "secret",
        "strict",
        "trust_store",
    )

    def __init__(
        self,
        func: Callable[..., object],
        *,
        dependencies: PathSpec = None,
        outputs: PathSpec = None,
        method: object = None,
        cache_dir: str | os.PathLike[str] | None = None,
        version: object = None,
        strict: bool = False,
        store: object = None,
        secret: bytes | str | None = None,
        trust_store: bool = False,
        root: str | os.PathLike[str] | None = None,
        restore_outputs: bool = False,
        ignore: Iterable[str] = (),
    ) -> None:
        if not callable(func):
            raise TypeError(f"jobstamps can only cache callables, not {func!r}")
        self.func = func
        self.keys = KeyBuilder(func, version, KEY_CONTEXT, ignore)
        self._dependencies = _spec(dependencies, "dependencies")
        self._outputs = _spec(outputs, "outputs")
        self.method: Method = _methods.resolve(
            _methods.MTimeMethod if method is None else method
        )
        if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
            raise TypeError(f"jobstamps: cache_dir must be a path, not {cache_dir!r}")
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.strict = strict
        if (
            store is not None
            and not isinstance(store, str)
            and not callable(getattr(store, "get", None))
        ):
            raise TypeError(
                f"jobstamps: store must be a URL or a remote store, not {store!r}"
            )
        self.remote = store
        self.secret = secret
        self.trust_store = trust_store
        if root is not None and not isinstance(root, str | os.PathLike):
            raise TypeError(f"jobstamps: root must be a path, not {root!r}")
        self.root = None if root is None else os.fspath(root)
        self.restore_outputs = restore_outputs

    def call(
        self,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        dependencies: Iterable[object] | None = None,
        outputs: Iterable[object] | None = None,
        *,
        max_age_ns: int | None = None,
        force: bool = False,
        keep: Callable[[object], bool] | None = None,
    ) -> object:
        """
        The result of ``func(*args, **kwargs)``, from its stamp if fresh.

        *dependencies* and *outputs*, when given, replace the job's own for
        this call (the 0.0.20 API passes them with every call).

        Args:
            max_age_ns: A stamp older than this many nanoseconds is stale.
                Its age counts from the earlier of when its run started and
                when its file was last written.
            force: Run and stamp the result even if the stamp is fresh.
            keep: Called with a fresh result; unless it returns true, the
                result is returned but not stamped.
        """
        if _config.disabled():
            _log.debug(
                "%s: running, caching is disabled (%s)",
                self.keys.function,
                DISABLED_REASON,
            )
            return self.func(*args, **kwargs)
        store, path, deps, outs = self._locate(args, kwargs, dependencies, outputs)
        method = self._method()
        # The remote is opened only when the local store can't answer: its
        # driver's import alone costs more than a local hit.
        remote = None
        if force:
            _log.debug("%s: running, forced", self.keys.function)
        else:
            result, reason = self._decide(store, path, deps, outs, method, max_age_ns)
            if reason is None:
                _log.debug("%s: hit, using %s", self.keys.function, path)
                return result
            remote = self._remote()
            if remote is not None:
                result = self._fetch(remote, store, path, deps, outs, max_age_ns)
                if result is not _MISSING:
                    return result
            _log.debug("%s: running, %s: %s", self.keys.function, reason[1], reason[0])
        result, stamp = self._run(
            store, path, args, kwargs, deps, outs, method, max_age_ns, force, keep
        )
        if stamp is not None and (remote or force):
            remote = remote or self._remote()
            if remote is not None:
                self._publish(remote, store, path, stamp)
        return result

    def out_of_date(
        self,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        dependencies: Iterable[object] | None = None,
        outputs: Iterable[object] | None = None,
        *,
        max_age_ns: int | None = None,
    ) -> str | None:
        """
        None if the call would be served from its stamp, else the path that
        makes it run: the stamp's own when there is none (or it is older
        than *max_age_ns*), a missing output, a missing or changed dependency.
        """
        reason = self.why(args, kwargs, dependencies, outputs, max_age_ns=max_age_ns)
        return None if reason is None else reason[0]

    def why(
        self,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        dependencies: Iterable[object] | None = None,
        outputs: Iterable[object] | None = None,
        *,
        max_age_ns: int | None = None,
    ) -> tuple[str, str] | None:
        """
        Like :meth:`out_of_date`, with the reason: ``(path, reason)``, say
        ``("a.c", "dependency changed")``, or None if the call is fresh.
        """
        if _config.disabled():
            return DISABLED_REASON, "caching is disabled"
        store, path, deps, outs = self._locate(args, kwargs, dependencies, outputs)
        stamp = _load(store, path)
        checked = () if self.restore_outputs else outs
        reason = _reason(stamp, path, deps, checked, self._method(), max_age_ns)[0]
        if reason is None and checked is not outs:
            assert stamp is not None
            # A missing output kept here would be written back, not run for.
            kept = {
                output
                for output, (digest, _) in kept_outputs(stamp).items()
                if os.path.exists(store.blob_path(digest))
            }
            missing = next(
                (o for o in outs if not os.path.exists(o) and o not in kept), None
            )
            if missing is not None:
                return missing, "output missing"
        return reason

    def key(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> StampKey:
        return self.keys.key(args, kwargs)

    def clear(self) -> None:
        """
        Forget every stamp of this function (under its cache directory).
        """
        self._store().clear(self.keys.function)

    def stamp_path(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
        return self._store().path(self.keys.function, self.keys.digest(args, kwargs))

    def _store(self) -> DirectoryStore:
        return store_for(self.cache_dir or _config.default_cache_dir())

    def _method(self) -> Method:
        return _HASHES if _config.always_use_hashes() else self.method

    def _locate(
        self,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        dependencies: Iterable[object] | None,
        outputs: Iterable[object] | None,
    ) -> tuple[DirectoryStore, str, tuple[str, ...], tuple[str, ...]]:
        """
        The store and stamp path of a call, and its dependencies and outputs.
        """
        digest = self.keys.digest(args, kwargs)
        deps = self._dependencies
        if dependencies is not None or type(deps) is not tuple:
            deps = self._paths(deps, dependencies, "dependencies", args, kwargs)
        outs = self._outputs
        if outputs is not None or type(outs) is not tuple:
            outs = self._paths(outs, outputs, "outputs", args, kwargs)
        store = self._store()
        return store, store.path(self.keys.function, digest), deps, outs

    def _paths(
        self,
        own: tuple[str, ...] | Callable[..., Iterable[object]],
        given: Iterable[object] | None,
        what: str,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
    ) -> tuple[str, ...]:
        if given is not None:
            return _as_paths(given, what)
        if isinstance(own, tuple):
            return own
        try:
            listed = own(*args, **kwargs)
        except Exception as e:
            e.add_note(f"(raised by the {what} callable of {self.keys.function})")
            raise
        return _as_paths(listed, f"the {what} callable's result")

    def _run(
        self,
        store: DirectoryStore,
        path: str,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        deps: tuple[str, ...],
        outs: tuple[str, ...],
        method: Method,
        max_age_ns: int | None,
        force: bool,
        keep: Callable[[object], bool] | None,
    ) -> tuple[object, Stamp | None]:
        """
        Run the job and stamp its result; return it with the stamp written.
        """
        try:
            store.prepare(path)
            writable: OSError | None = None
        except CacheDirError:
            raise
        except (FileExistsError, NotADirectoryError) as e:
            raise _cache_dir_error(store.root, e) from e
        except OSError as e:
            writable = e  # read-only or full: still run, warn once after
        # One caller per stamp runs the job (the lock is per stamp, so other
        # arguments never wait); the others wait, then find its stamp.
        with store.lock(path):
            if not force:
                result, reason = self._decide(
                    store, path, deps, outs, method, max_age_ns
                )
                if reason is None:
                    _log.debug(
                        "%s: hit, using %s (written while waiting)",
                        self.keys.function,
                        path,
                    )
                    return result, None
            # Fingerprints come first, so an edit made while the job runs shows
            # up as a change next time.
            created_ns = time.time_ns()
            fingerprints = tuple((dep, _fingerprint(dep, method)) for dep in deps)
            result = self.func(*args, **kwargs)
            if keep is not None and not keep(result):
                _log.debug("%s: result not kept, so not stamped", self.keys.function)
                return result, None
            if writable is not None:
                _log.warn(
                    f"could not write the stamp of {self.keys.function}: {writable}",
                    stacklevel=4,
                )
                return result, None
            try:
                pickled = _pickled(result)
            except Exception as e:
                cause = f"{type(e).__name__}: {e}"
                if self.strict:
                    raise UnpicklableResultError(
                        f"jobstamps: the result of {self.keys.function} can't be "
                        f"pickled, so it can't be stamped ({cause}); return a "
                        "picklable value, or pass strict=False to return it unstamped"
                    ) from None
                _log.warn(
                    f"the result of {self.keys.function} can't be pickled, so it "
                    f"was not stamped ({cause})",
                    stacklevel=4,
                )
                return result, None
            try:
                stamp = Stamp(
                    created_ns, fingerprints, self._record_outputs(store, outs), pickled
                )
                store.save(path, stamp)
            except OSError as e:
                _log.warn(
                    f"could not write the stamp of {self.keys.function}: {e}",
                    stacklevel=4,
                )
                return result, None
            return result, stamp

    def _record_outputs(self, store: DirectoryStore, outs: tuple[str, ...]) -> Outputs:
        if not self.restore_outputs:
            return tuple((path, None, 0) for path in outs)
        from . import _sharing

        return _sharing.record_outputs(store, outs)

    def _decide(
        self,
        store: DirectoryStore,
        path: str,
        deps: tuple[str, ...],
        outs: tuple[str, ...],
        method: Method,
        max_age_ns: int | None,
    ) -> tuple[object, tuple[str, str] | None]:
        """
        :func:`_decide`; with *restore_outputs*, missing outputs of an
        otherwise fresh stamp are written back from their kept contents.
        """
        if not (self.restore_outputs and outs):
            return _decide(store, path, deps, outs, method, max_age_ns)
        result, reason = _decide(store, path, deps, (), method, max_age_ns)
        if reason is None:
            stamp = _load(store, path)
            assert stamp is not None
            reason = _restore(store, self._remote, stamp, outs)
        return result, reason

    def _remote(self) -> RemoteStore | None:
        if self.remote is None and not _config.store_url():
            return None
        from . import _sharing

        return _sharing.remote_for(self.remote, self.secret, self.trust_store)

    def _fetch(
        self,
        remote: RemoteStore,
        store: DirectoryStore,
        path: str,
        deps: tuple[str, ...],
        outs: tuple[str, ...],
        max_age_ns: int | None,
    ) -> object:
        """
        The result of a fresh stamp from *remote*, copied to the local store;
        else :data:`_MISSING`.

        Another machine's fingerprints are only good for their contents, so
        the remote stamp is checked with :class:`HashMethod`.
        """
        from . import _sharing

        root = _config.project_root(self.root)
        key = _sharing.remote_key(self.keys.function, path)
        stamp = _sharing.fetch(remote, key, deps, outs, root)
        if stamp is None:
            return _MISSING
        checked = () if self.restore_outputs else outs
        reason, refreshed = _reason(stamp, path, deps, checked, _HASHES, max_age_ns)
        if reason is None and self.restore_outputs:
            reason = _restore(store, lambda: remote, stamp, outs)
        if reason is not None:
            _log.debug(
                "ignoring the stamp from %s: %s: %s", remote.url, reason[1], reason[0]
            )
            return _MISSING
        try:
            result = pickle.loads(stamp.result)
        except Exception as e:
            _log.debug(
                "ignoring the stamp from %s: unreadable result (%s)", remote.url, e
            )
            return _MISSING
        local = Stamp(
            stamp.created_ns,
            refreshed or stamp.dependencies,
            stamp.outputs,
            stamp.result,
        )
        try:
            store.prepare(path)
            store.save(path, local)
        except OSError as e:
            _log.debug("could not keep the stamp from %s: %s", remote.url, e)
        _log.debug("%s: hit, using the stamp from %s", self.keys.function, remote.url)
        return result

    def _publish(
        self, remote: RemoteStore, store: DirectoryStore, path: str, stamp: Stamp
    ) -> None:
        from . import _sharing

        root = _config.project_root(self.root)
        key = _sharing.remote_key(self.keys.function, path)
        _sharing.publish(remote, key, store, stamp, root)


def _pickled(result: object) -> bytes | Pickling:
    """
    *result* pickled, or, when it is large bytes (whose pickling can't fail),
    left for the store to pickle straight into the stamp file.
    """
    if (type(result) is bytes or type(result) is bytearray) and len(result) > (1 << 20):
        return Pickling(result)
    return pickle.dumps(result, protocol=-1)  # -1: the highest protocol


def _spec(spec: object, what: str) -> tuple[str, ...] | Callable[..., Iterable[object]]:
    if spec is None:
        return ()
    if callable(spec):
        return spec
    return _as_paths(spec, what)


def _as_paths(paths: object, what: str) -> tuple[str, ...]:
    if type(paths) is tuple and not paths:
        return ()
    if isinstance(paths, str | bytes | os.PathLike):
        raise TypeError(
            f"jobstamps: {what} must be an iterable of paths, not the single "
            f"path {paths!r}; wrap it in a list"
        )
    try:
        items: tuple[object, ...] = tuple(paths)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"jobstamps: {what} must be an iterable of paths (or a callable "
            f"returning one), not {paths!r}"
        ) from None
    try:
        return tuple(os.fsdecode(item) for item in items)  # type: ignore[arg-type]
    except TypeError:
        bad = next(i for i in items if not isinstance(i, str | bytes | os.PathLike))
        raise TypeError(
            f"jobstamps: {what} must hold paths (str or os.PathLike), not {bad!r}"
        ) from None


def _load(store: DirectoryStore, path: str) -> Stamp | None:
    try:
        return store.load(path)
    except StampFormatError as e:
        _log.debug("ignoring the stamp %s: %s", path, e)
    except CacheDirError:
        raise
    except NotADirectoryError as e:
        raise _cache_dir_error(store.root, e) from e
    except OSError as e:
        _log.debug("ignoring the stamp %s: %s", path, e)
    return None


def _restore(
    store: DirectoryStore,
    remote: Callable[[], RemoteStore | None],
    stamp: Stamp,
    outs: tuple[str, ...],
) -> tuple[str, str] | None:
    """
    Write back *stamp*'s missing outputs; why the call must still run, or None.
    """
    if all(os.path.exists(output) for output in outs):
        return None
    from . import _sharing

    _sharing.restore_outputs(store, remote, stamp, outs)
    missing = next((output for output in outs if not os.path.exists(output)), None)
    return None if missing is None else (missing, "output missing")


def _decide(
    store: DirectoryStore,
    path: str,
    deps: tuple[str, ...],
    outs: tuple[str, ...],
    method: Method,
    max_age_ns: int | None,
) -> tuple[object, tuple[str, str] | None]:
    """
    ``(result, None)`` when the stamp at *path* is fresh, else ``(None,
    (path, reason))`` saying why the call must run.
    """
    stamp = _load(store, path)
    if max_age_ns is None:
        reason, refreshed = _stale(stamp, path, deps, outs, method)
    else:
        reason, refreshed = _reason(stamp, path, deps, outs, method, max_age_ns)
    if reason is not None:
        return None, reason
    assert stamp is not None
    try:
        result = pickle.loads(stamp.result)
    except Exception as e:
        # A stamp whose result no longer unpickles (say, its class was
        # renamed) is no stamp: run again and overwrite it.
        store.forget(path)
        _log.debug(
            "ignoring the stamp %s: its result can't be unpickled (%s: %s)",
            path,
            type(e).__name__,
            e,
        )
        return None, (path, "stamp unreadable")
    if refreshed is not None:
        _refresh(store, path, stamp, refreshed)
    return result, None


def _reason(
    stamp: Stamp | None,
    path: str,
    deps: tuple[str, ...],
    outs: tuple[str, ...],
    method: Method,
    max_age_ns: int | None,
) -> tuple[tuple[str, str] | None, Dependencies | None]:
    """
    :func:`_stale`, and a stamp older than *max_age_ns* is stale too.
    """
    reason, refreshed = _stale(stamp, path, deps, outs, method)
    if reason is None and max_age_ns is not None and _expired(stamp, path, max_age_ns):
        return (path, "stamp expired"), None
    return reason, refreshed


def _cache_dir_error(root: str, error: OSError) -> CacheDirError:
    return CacheDirError(
        error.errno or errno.ENOTDIR,
        f"jobstamps can't keep stamps in {root!r}: it, or a folder jobstamps "
        f"needs inside it, is not a directory ({error.strerror or error})",
        root,
    )


def _stat(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat_module.S_ISDIR(st.st_mode):
        raise IsADirectoryError(
            errno.EISDIR,
            "jobstamps dependencies must be files, and this is a directory; "
            "list the files in it instead",
            path,
        )
    return st


def _fingerprint(path: str, method: Method) -> Fingerprint | None:
    if type(method) is _methods.HashMethod:
        # Opened once: stat'ed through the descriptor, then read.
        try:
            return _methods.hash_fingerprint(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            pass  # a directory, say: the general path below says why
    st = _stat(path)
    return None if st is None else method.fingerprint(path, st)


def _stale(
    stamp: Stamp | None,
    path: str,
    deps: tuple[str, ...],
    outs: tuple[str, ...],
    method: Method,
) -> tuple[tuple[str, str] | None, Dependencies | None]:
    """
    Why the call must run, as ``(path, reason)``, or None if it need not;
    and, when fresh, refreshed dependency fingerprints worth writing back.
    """
    if stamp is None:
        return (path, "no stamp"), None
    for output in outs:
        if not os.path.exists(output):
            return (output, "output missing"), None
    recorded: Dependencies = stamp.dependencies
    if not deps and not recorded:
        return None, None
    if _unchanged(stamp, deps, method):
        return None, None
    if len(recorded) != len(deps) or any(
        r[0] != d for r, d in zip(recorded, deps, strict=True)
    ):
        then = dict(recorded)
        added = next((d for d in deps if d not in then), None)
        if added is not None:
            return (added, "dependency added"), None
        removed = next((p for p, _ in recorded if p not in set(deps)), None)
        if removed is not None:
            return (removed, "dependency removed"), None
        recorded = tuple((d, then[d]) for d in deps)  # same files, new order
    refreshed: list[tuple[str, Fingerprint | None]] | None = None
    for i, (dep, fingerprint) in enumerate(recorded):
        st = _stat(dep)
        if st is None:
            return (dep, "dependency missing"), None
        if fingerprint is None:
            return (dep, "dependency appeared"), None
        now = method.check(dep, st, fingerprint)
        if now is None:
            return (dep, "dependency changed"), None
        if now != fingerprint:
            if refreshed is None:
                refreshed = list(recorded)
            refreshed[i] = (dep, now)
    return None, None if refreshed is None else tuple(refreshed)


def _unchanged(stamp: Stamp, deps: tuple[str, ...], method: Method) -> bool:
    """
    True when the built-in *method* would find every dependency unchanged
    because its stat signature is the one recorded: one ``stat`` per file and
    no more. False means "not proven", and the full check decides.
    """
    cls = type(method)
    if cls is not _methods.MTimeMethod and cls is not _methods.HashMethod:
        return False  # other methods decide for themselves, file by file
    checks = stamp.checks
    if checks is None:
        checks = stamp.checks = _checks(stamp.dependencies)
    paths, signatures, trusted = checks
    if paths is not deps:
        if paths != deps:
            return False
        # The same list again (as the decorator passes it): compare by
        # identity from now on.
        stamp.checks = (deps, signatures, trusted)
    if not trusted and cls is _methods.HashMethod:
        return False  # some stat is too recent to prove its content unchanged
    stat = os.stat
    try:
        for dep, mtime_ns, size in signatures:
            st = stat(dep)
            if st.st_mtime_ns != mtime_ns or st.st_size != size:
                return False
    except OSError:
        return False
    return True


def _checks(
    recorded: Dependencies,
) -> tuple[tuple[str, ...], tuple[tuple[str, int, int], ...], bool]:
    """
    The paths of *recorded*, their stat signatures, and whether every one of
    them was taken long enough after its file's mtime to be trusted.
    """
    paths = tuple(dep for dep, _ in recorded)
    signatures = []
    trusted = True
    for dep, fingerprint in recorded:
        if fingerprint is None:
            # A file missing when the job ran: never a quick "unchanged".
            signatures.append((dep, -1, -1))
            continue
        signatures.append((dep, fingerprint[0], fingerprint[1]))
        if _methods._racy(fingerprint[0], fingerprint[3]):
            trusted = False
    return paths, tuple(signatures), trusted


def _expired(stamp: Stamp | None, path: str, max_age_ns: int) -> bool:
    if stamp is None:
        return True
    # The earlier of the two: a refreshed stamp keeps its run's start time,
    # and a file aged by hand (os.utime, a restored cache) counts as old.
    try:
        written_ns = os.stat(path).st_mtime_ns
    except OSError:
        return True
    return time.time_ns() - min(stamp.created_ns, written_ns) > max_age_ns


def _refresh(
    store: DirectoryStore, path: str, stamp: Stamp, deps: Dependencies
) -> None:
    # The files were verified unchanged by content; recording their new stat
    # lets the next check skip reading them. Losing this write costs nothing.
    try:
        store.save(path, Stamp(stamp.created_ns, deps, stamp.outputs, stamp.result))
    except OSError as e:
        _log.debug("could not refresh the stamp %s: %s", path, e)
