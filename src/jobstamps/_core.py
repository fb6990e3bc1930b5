"""
A cached function: :class:`Job`, the only module that combines key, store,
freshness and run.

``Job.call`` reads as the flow of one call: key the call (:mod:`._key`),
load its stamp (:mod:`._store`), decide whether it is fresh
(:mod:`._freshness`), and on a miss run the function and store its stamp.
A remote store (:mod:`.remote`, through :mod:`._sharing`) is asked only when
the local stamp misses, and kept output contents (:mod:`._outputs`) only for
jobs that restore outputs. The decorator, the 0.0.20 ``run``/``out_of_date``
and the ``jobstamp`` command are thin layers over this; this module knows
nothing of them. The remote's lease of a call (:mod:`._lease`) is asked for
only when both stamps miss.

Names: *store* is always the local :class:`~._store.DirectoryStore`,
*remote* a remote store.
"""

from __future__ import annotations

import os
import time

from . import _config, _counters, _log, _methods, _paths
from ._counters import HITS, LEASE_WAIT_NS, LEASE_WAITS, MISSES, RUNS, SAVED_NS
from ._freshness import Call, Miss, stale
from ._key import KeyBuilder
from ._lock import StampLock
from ._stampfile import KEY_CONTEXT, NOT_WRITTEN, Stamp, pickled, unpickled
from ._store import DirectoryStore, cache_dir_error
from .exceptions import CacheDirError, UnpicklableResultError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._lease import Lease
    from ._paths import PathSpec
    from ._protocol import Method
    from ._stampfile import Dependencies, Outputs
    from ._stampkey import StampKey
    from ._stats import Stats
    from .remote import RemoteStore

    RemoteOpener = Callable[[], RemoteStore | None]

DISABLED_REASON = "JOBSTAMPS_DISABLED"

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
        "_tally",
        "cache_dir",
        "counted_as",
        "describe",
        "func",
        "keep",
        "keys",
        "lease",
        "lease_wait",
        "max_age_ns",
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
        lease: bool = True,
        lease_wait: float | None = None,
        env: tuple[str, ...] = (),
        max_age_ns: int | None = None,
        keep: Callable[[object], object] | None = None,
        counted_as: tuple[str, str] | None = None,
        describe: Callable[[tuple[object, ...], Mapping[str, object]], str]
        | None = None,
    ) -> None:
        # env: names of environment variables keyed with every call;
        # max_age_ns and keep: as for call(), unless a call gives its own;
        # counted_as: (kind, name) in the statistics, the function's by default.
        if not callable(func):
            raise TypeError(f"jobstamps can only cache callables, not {func!r}")
        self.func = func
        self.keys = KeyBuilder(func, version, KEY_CONTEXT, ignore, env)
        self.max_age_ns = max_age_ns
        self.keep = keep
        self.counted_as = counted_as or ("function", self.keys.function)
        self._tally: tuple[DirectoryStore, list[int]] | None = None
        self._dependencies = _paths.spec(dependencies, "dependencies")
        self._outputs = _paths.spec(outputs, "outputs")
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
        self.lease = lease
        if lease_wait is not None:
            if isinstance(lease_wait, bool) or not isinstance(lease_wait, int | float):
                raise TypeError(
                    f"jobstamps: lease_wait must be a number of seconds, not {lease_wait!r}"
                )
            if not lease_wait >= 0:
                raise ValueError(
                    f"jobstamps: lease_wait must be >= 0, not {lease_wait!r}"
                )
        self.lease_wait = lease_wait
        # How debug lines and warnings name a call (default: short_call).
        self.describe = describe

    def label(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
        """
        The call as debug lines and warnings name it: the function and a
        short form of its arguments, or what *describe* says.
        """
        if self.describe is not None:
            return self.describe(args, kwargs)
        return _log.short_call(self.keys.function, args, kwargs)

    def call(
        self,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        dependencies: Iterable[object] | None = None,
        outputs: Iterable[object] | None = None,
        *,
        max_age_ns: int | None = None,
        force: bool = False,
        keep: Callable[[object], object] | None = None,
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

        *max_age_ns* and *keep* default to the job's own.
        """
        if _config.disabled():
            if _log.enabled():
                _log.debug(
                    "%s: running, caching is disabled (%s)",
                    self.label(args, kwargs),
                    DISABLED_REASON,
                )
            return self.func(*args, **kwargs)
        if max_age_ns is None:
            max_age_ns = self.max_age_ns
        if keep is None:
            keep = self.keep
        store, call = self._locate(args, kwargs, dependencies, outputs)
        method = self._method()
        # The remote is opened only when the local store can't answer: its
        # driver's import alone costs more than a local hit.
        remote = None
        lease = None
        if force:
            if _log.enabled():
                _log.debug("%s: running, forced", self.label(args, kwargs))
        else:
            result, miss = self._local(store, call, method, max_age_ns)
            if miss is None:
                if _log.enabled():
                    _log.debug("%s: hit, using %s", self.label(args, kwargs), call.path)
                return result
            remote = self._remote()
            if remote is not None:
                result, fetched = self._fetch(remote, store, call, max_age_ns)
                if fetched is None:
                    if _log.enabled():
                        _log.debug(
                            "%s: hit, using the stamp from %s",
                            self.label(args, kwargs),
                            remote.url,
                        )
                    return result
                if self.lease and _sharing_rule(method):
                    lease = self._lease(remote, store, call, max_age_ns)
            if _log.enabled():
                _log.debug(
                    "%s: running, %s: %s",
                    self.label(args, kwargs),
                    miss.reason,
                    miss.path,
                )
        stamp = None
        try:
            result, stamp = self._run(
                store, call, args, kwargs, method, max_age_ns, force, keep, lease
            )
            if stamp is not None and (remote or force) and _sharing_rule(method):
                remote = remote or self._remote()
                if remote is not None:
                    self._publish(remote, store, call.path, stamp)
        finally:
            if lease is not None:
                # Once published: waiters then find the stamp.
                lease.release(published=stamp is not None)
                if lease.waited_ns:
                    counts = self._counts(store)
                    counts[LEASE_WAITS] += 1
                    counts[LEASE_WAIT_NS] += lease.waited_ns
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

        It decides as a call does, kept outputs included, but runs nothing,
        restores nothing and unpickles nothing.
        """
        if _config.disabled():
            return DISABLED_REASON, "caching is disabled"
        if max_age_ns is None:
            max_age_ns = self.max_age_ns
        store, call = self._locate(args, kwargs, dependencies, outputs)
        stamp = store.lookup(call.path)
        _, miss = self._decide(
            store, call, stamp, self._method(), max_age_ns, self._remote, dry_run=True
        )
        if miss is None:
            return None
        if (
            miss.reason == "output missing"
            and stamp is not None
            and any(r[0] == miss.path and r[2] == NOT_WRITTEN for r in stamp.outputs)
        ):
            return miss.path, "output not written by the last run"
        return miss.path, miss.reason

    def key(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> StampKey:
        return self.keys.key(args, kwargs)

    def clear(self) -> int:
        """
        Forget every stamp of this function (under its cache directory);
        how many there were.
        """
        from ._store import is_stamp_file, stamp_files

        store = self._store()
        found = stamp_files(store.root, self.keys.function)
        count = sum(1 for path, _ in found if is_stamp_file(path))
        store.clear(self.keys.function)
        if self.restore_outputs:
            from . import _outputs

            _outputs.sweep(store.root)  # what killed writers of kept outputs left
        return count

    def stats(self) -> Stats:
        """
        The statistics of this job in its cache directory.
        """
        from ._stats import stats_of

        return stats_of(self._store().root, *self.counted_as)

    def _counts(self, store: DirectoryStore) -> list[int]:
        # This process's counts of the calls in *store* (_counters.COUNTERS).
        cached = self._tally
        if cached is None or cached[0] is not store:
            kind, name = self.counted_as
            cached = self._tally = (store, _counters.tally(store.root, kind, name))
        return cached[1]

    def stamp_path(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> str:
        return self._store().path(self.keys.function, self.keys.digest(args, kwargs))

    def _store(self) -> DirectoryStore:
        # Resolved at every call: a relative cache_dir names a folder of the
        # current directory, and each folder is checked for safety on its own.
        return store_for(_config.cache_dir(self.cache_dir))

    def _method(self) -> Method:
        return _HASHES if _config.always_use_hashes() else self.method

    def _locate(
        self,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        dependencies: Iterable[object] | None,
        outputs: Iterable[object] | None,
    ) -> tuple[DirectoryStore, Call]:
        """
        The store of a call, and the call as freshness sees it.
        """
        digest = self.keys.digest(args, kwargs)
        deps = self._dependencies
        if dependencies is not None or not isinstance(deps, tuple):
            deps = _paths.of_call(
                deps, dependencies, "dependencies", args, kwargs, self.keys.function
            )
        outs = self._outputs
        if outputs is not None or not isinstance(outs, tuple):
            outs = _paths.of_call(
                outs, outputs, "outputs", args, kwargs, self.keys.function
            )
        store = self._store()
        return store, Call(store.path(self.keys.function, digest), deps, outs)

    def _local(
        self, store: DirectoryStore, call: Call, method: Method, max_age_ns: int | None
    ) -> tuple[object, Miss | None]:
        """
        :meth:`_decide` on the local stamp of *call*; a fresh stamp whose
        fingerprints the method renewed is written back with them.
        """
        stamp = store.lookup(call.path)
        result, miss = self._decide(
            store, call, stamp, method, max_age_ns, self._remote
        )
        if miss is None:
            assert stamp is not None
            if call.refreshed is not None:
                try:
                    store.refresh(call.path, stamp, call.refreshed)
                except OSError as e:  # losing this write costs nothing
                    _log.debug("could not refresh the stamp %s: %s", call.path, e)
            self._hit(store, stamp)
        return result, miss

    def _hit(self, store: DirectoryStore, stamp: Stamp) -> None:
        # Counted in the process: a hit writes nothing and locks nothing.
        counts = self._counts(store)
        counts[HITS] += 1
        counts[SAVED_NS] += stamp.duration_ns
        if not counts[HITS] & 1023:  # now and then, see if it's time to write
            _counters.tick()

    def _decide(
        self,
        store: DirectoryStore,
        call: Call,
        stamp: Stamp | None,
        method: Method,
        max_age_ns: int | None,
        remote: RemoteOpener,
        *,
        dry_run: bool = False,
        local: bool = True,
    ) -> tuple[object, Miss | None]:
        """
        ``(result, None)`` when *stamp* serves *call*, else ``(None, miss)``:
        the one decision of a call, a remote fetch and :meth:`why`.

        With *restore_outputs*, missing outputs that could be written back
        don't make the stamp stale, and are written back; *remote* is asked
        for their contents only when the local copy is missing. A *dry_run*
        decides the same without unpickling or restoring anything. A stamp
        not *local* (fetched) ages from its recorded creation time alone.
        """
        restorable = None
        if self.restore_outputs and call.outputs and stamp is not None:
            from . import _outputs

            restorable = _outputs.restorable(store.root, remote, stamp)
        miss = stale(stamp, call, method, max_age_ns, restorable, local=local)
        if miss is not None or dry_run:
            return None, miss
        assert stamp is not None
        try:
            result = unpickled(stamp)
        except Exception as e:
            # A stamp whose result no longer unpickles (say, its class was
            # renamed) is no stamp: run again and overwrite it.
            store.forget(call.path)
            _log.debug(
                "ignoring the stamp %s: its result can't be unpickled (%s: %s)",
                call.path,
                type(e).__name__,
                e,
            )
            return None, Miss(call.path, "stamp unreadable")
        if restorable is not None:
            missing = _outputs.restore(store.root, remote, stamp, call.outputs)
            if missing is not None:
                return None, Miss(missing, "output missing")
        return result, None

    def _run(
        self,
        store: DirectoryStore,
        call: Call,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        method: Method,
        max_age_ns: int | None,
        force: bool,
        keep: Callable[[object], object] | None,
        lease: Lease | None = None,
    ) -> tuple[object, Stamp | None]:
        """
        Run the job and stamp its result; return it with the stamp written.

        With a *lease*, another machine running the same job is waited for,
        and its stamp's result returned (with no stamp written here).
        """
        writable = self._writable(store, call)
        # One caller per stamp runs the job (the lock is per stamp, so other
        # arguments never wait); the others wait, then find its stamp.
        with StampLock(call.path):
            if not force:
                result, miss = self._local(store, call, method, max_age_ns)
                if miss is None:
                    if _log.enabled():
                        _log.debug(
                            "%s: hit, using %s (written while waiting)",
                            self.label(args, kwargs),
                            call.path,
                        )
                    return result, None
            created_ns, fingerprints = self._begin(call, method)
            if lease is not None and lease.wait_or_take(fingerprints):
                # A remote hit (counted as one), after waiting lease.waited_ns
                # for the machine that ran the job (a call that ran after
                # waiting has it too).
                return lease.result, None
            self._ran(store, force)
            started = time.perf_counter_ns()
            result = self.func(*args, **kwargs)
            duration_ns = time.perf_counter_ns() - started
            stamp = self._stamp(
                store,
                call,
                result,
                created_ns,
                duration_ns,
                fingerprints,
                keep,
                writable,
                args,
                kwargs,
            )
            _counters.tick()
            return result, stamp

    def _writable(self, store: DirectoryStore, call: Call) -> OSError | None:
        """
        Make the folders of *call*'s stamp; None, or why its stamp won't be
        written (read-only or full: the job still runs, with a warning).
        """
        try:
            store.prepare(call.path)
        except CacheDirError:
            raise
        except (FileExistsError, NotADirectoryError) as e:
            raise cache_dir_error(store.root, e) from e
        except OSError as e:
            return e
        return None

    def _begin(self, call: Call, method: Method) -> tuple[int, Dependencies]:
        """
        Take the time of a run about to start and the fingerprints of its
        dependencies: first, so that an edit made while the job runs shows
        up as a change next time.
        """
        if self.restore_outputs and call.outputs:
            from . import _outputs

            _outputs.refuse_directories(call.outputs)
        created_ns = time.time_ns()
        fingerprints = tuple(
            (dep, _methods.fingerprint(dep, method)) for dep in call.dependencies
        )
        return created_ns, fingerprints

    def _ran(self, store: DirectoryStore, force: bool) -> None:
        # Counted as the run starts: a run whose stamp can't be written, or
        # that raises, is a run all the same.
        counts = self._counts(store)
        counts[RUNS] += 1
        if not force:
            counts[MISSES] += 1

    def _stamp(
        self,
        store: DirectoryStore,
        call: Call,
        result: object,
        created_ns: int,
        duration_ns: int,
        fingerprints: Dependencies,
        keep: Callable[[object], object] | None,
        writable: OSError | None,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
    ) -> Stamp | None:
        """
        Stamp the *result* of a run of ``func(*args, **kwargs)``, unless
        *keep* refuses it; the stamp written, or None (warned about when it
        can't be written).
        """
        if _log.enabled():
            for output in call.outputs:
                if not os.path.exists(output):
                    _log.debug(
                        "%s: output %s was not written by the run",
                        self.label(args, kwargs),
                        output,
                    )
        if keep is not None and not keep(result):
            if _log.enabled():
                _log.debug(
                    "%s: result not kept, so not stamped", self.label(args, kwargs)
                )
            return None
        if writable is not None:
            _log.warn(
                f"could not write the stamp of {self.label(args, kwargs)}: {writable}"
            )
            return None
        try:
            pickled_result = pickled(result)
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
                f"was not stamped ({cause})"
            )
            return None
        try:
            stamp = Stamp(
                created_ns,
                duration_ns,
                fingerprints,
                self._record_outputs(store, call.outputs),
                pickled_result,
            )
            store.save(call.path, stamp)
        except OSError as e:
            if isinstance(e, IsADirectoryError) and e.filename in call.outputs:
                raise  # an output that is a directory: refused, not warned
            _log.warn(f"could not write the stamp of {self.label(args, kwargs)}: {e}")
            return None
        return stamp

    def _record_outputs(self, store: DirectoryStore, outs: tuple[str, ...]) -> Outputs:
        # An output the run did not write is recorded as such, for why().
        if not self.restore_outputs:
            return tuple(
                (path, None, 0 if os.path.exists(path) else NOT_WRITTEN)
                for path in outs
            )
        from . import _outputs

        return tuple(
            (path, digest, mode if digest else NOT_WRITTEN)
            for path, digest, mode in _outputs.record(store.root, outs)
        )

    def _remote(self) -> RemoteStore | None:
        if self.remote is None and not _config.store_url():
            return None
        from . import _sharing

        return _sharing.remote_for(self.remote, self.secret, self.trust_store)

    def _fetch(
        self,
        remote: RemoteStore,
        store: DirectoryStore,
        call: Call,
        max_age_ns: int | None,
    ) -> tuple[object, Miss | None]:
        # Another machine's fingerprints are only good for their contents:
        # the remote stamp is decided with HashMethod.
        from . import _sharing

        def decide(stamp: Stamp) -> tuple[object, Miss | None]:
            result, miss = self._decide(
                store, call, stamp, _HASHES, max_age_ns, lambda: remote, local=False
            )
            if miss is None:
                self._hit(store, stamp)
            return result, miss

        root = _config.project_root(self.root)
        return _sharing.fetch(remote, store, call, self.keys.function, root, decide)

    def _lease(
        self,
        remote: RemoteStore,
        store: DirectoryStore,
        call: Call,
        max_age_ns: int | None,
    ) -> Lease | None:
        from . import _lease

        return _lease.lease_for(
            remote,
            self.keys.function,
            call,
            _config.project_root(self.root),
            self.lease_wait,
            lambda: self._fetch(remote, store, call, max_age_ns),
        )

    def _publish(
        self, remote: RemoteStore, store: DirectoryStore, path: str, stamp: Stamp
    ) -> None:
        from . import _sharing

        root = _config.project_root(self.root)
        key = _sharing.remote_key(self.keys.function, path)
        _sharing.publish(remote, key, store.root, stamp, root)


def _sharing_rule(method: Method) -> bool:
    from ._sharing import shares

    return shares(method)
