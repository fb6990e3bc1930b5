"""
What a cached function is, whatever the call: :class:`JobSettings`, the
settings of a :class:`._core.Job`, checked once when it is made.

Its key builder, dependency and output lists, method, cache directory,
remote store, lease and controls, and what follows from them alone: the
store and stamp path of a call, the label debug lines give it, this
process's counts of its calls, its statistics, ``clear()``. The flow of a
call is :mod:`._core`'s; this module knows nothing of it.
"""

from __future__ import annotations

import os

from . import _config, _counters, _log, _methods, _paths
from ._counters import HITS, LEASE_WAIT_NS, LEASE_WAITS, MISSES, RUNS, SAVED_NS
from ._freshness import Call
from ._key import KeyBuilder
from ._stampfile import KEY_CONTEXT
from ._store import DirectoryStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._paths import PathSpec
    from ._protocol import Method
    from ._stampfile import Dependencies, Stamp
    from ._stampkey import StampKey
    from ._stats import Stats

_stores: dict[str, DirectoryStore] = {}
HASHES = _methods.HashMethod()


def store_for(root: str) -> DirectoryStore:
    """
    The store of stamps under *root*, one per process so that all jobs share
    what it remembers.
    """
    store = _stores.get(root)
    if store is None:
        store = _stores[root] = DirectoryStore(root)
    return store


class JobSettings:
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
        return HASHES if _config.always_use_hashes() else self.method

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

    def _hit(self, store: DirectoryStore, stamp: Stamp) -> None:
        # Counted in the process: a hit writes nothing and locks nothing.
        counts = self._counts(store)
        counts[HITS] += 1
        counts[SAVED_NS] += stamp.duration_ns
        if not counts[HITS] & 1023:  # now and then, see if it's time to write
            _counters.tick()

    def _ran(self, store: DirectoryStore, force: bool) -> None:
        # Counted as the run starts: a run whose stamp can't be written, or
        # that raises, is a run all the same.
        counts = self._counts(store)
        counts[RUNS] += 1
        if not force:
            counts[MISSES] += 1

    def _waited(self, store: DirectoryStore, waited_ns: int) -> None:
        # A call that waited for another machine's lease (0: it did not).
        if waited_ns:
            counts = self._counts(store)
            counts[LEASE_WAITS] += 1
            counts[LEASE_WAIT_NS] += waited_ns

    def _stamp(
        self,
        store: DirectoryStore,
        call: Call,
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        run: tuple[object, int, int, Dependencies],
        keep: Callable[[object], object] | None,
        writable: OSError | None,
    ) -> Stamp | None:
        """
        :func:`._stamping.stamp` with this job's settings: the *run* of
        ``func(*args, **kwargs)`` is its result, when it started and how
        long it took, and the fingerprints taken before it.
        """
        from . import _stamping

        result, created_ns, duration_ns, fingerprints = run
        return _stamping.stamp(
            store,
            call,
            result,
            created_ns,
            duration_ns,
            fingerprints,
            keep=keep,
            writable=writable,
            strict=self.strict,
            restore_outputs=self.restore_outputs,
            function=self.keys.function,
            label=lambda: self.label(args, kwargs),
        )
