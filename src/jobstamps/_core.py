"""
A cached function's calls: :class:`Job`, the only module that combines key,
store, freshness and run.

``Job.call`` reads as the flow of one call: key the call (:mod:`._key`),
load its stamp (:mod:`._store`), decide whether it is fresh
(:mod:`._freshness`), and on a miss run the function and stamp its result
(:mod:`._stamping`). A remote store (:mod:`.remote`, through
:mod:`._sharing`) is asked only when the local stamp misses, and kept output
contents (:mod:`._outputs`) only for jobs that restore outputs; the
remote's lease of a call (:mod:`._lease`) is asked for only when both
stamps miss. What a job is apart from its calls, its settings, is
:mod:`._job`'s. The decorator, the 0.0.20 ``run``/``out_of_date`` and the
``jobstamp`` command are thin layers over this; this module knows nothing of
them.

Names: *store* is always the local :class:`~._store.DirectoryStore`,
*remote* a remote store.
"""

from __future__ import annotations

import time

from . import _config, _counters, _log
from ._freshness import Call, Miss, stale
from ._job import HASHES, JobSettings
from ._stampfile import NOT_WRITTEN, Stamp, unpickled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._lease import Lease
    from ._protocol import Method
    from ._store import DirectoryStore
    from .remote import RemoteStore

    RemoteOpener = Callable[[], RemoteStore | None]

DISABLED_REASON = "JOBSTAMPS_DISABLED"


class Job(JobSettings):
    """
    A cached function: call it through :meth:`call`, ask :meth:`why` it
    would run.
    """

    __slots__ = ()

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
                self._waited(store, lease.waited_ns)
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
        from . import _stamping  # a miss's: a hit never loads them
        from ._lock import StampLock

        writable = _stamping.prepare(store, call)
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
            created_ns, fingerprints = _stamping.begin(
                call, method, self.restore_outputs
            )
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
                args,
                kwargs,
                (result, created_ns, duration_ns, fingerprints),
                keep,
                writable,
            )
            _counters.tick()
            return result, stamp

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
                store, call, stamp, HASHES, max_age_ns, lambda: remote, local=False
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
