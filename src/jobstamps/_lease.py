"""
One run per stamp across machines: the lease of a call in a remote store.

On a local and a remote miss of a shared stamp (the rule of
:func:`._sharing.local_only`), the caller takes the call's lease in the
remote store (:class:`~.remote.RemoteLeases`) and runs the job, renewing the
lease from a heartbeat thread until the stamp is published and the lease
released. A caller that finds the lease held waits: it polls the lease with a
backoff, and once it is gone fetches the stamp, a remote hit. Without a
stamp, it runs the job: at once if the holder said it failed, else (the
holder died, and its lease expired) after taking the lease itself. A waiter
also runs after its wait bound, or when the remote fails.

A lease only saves work: nothing here decides whether a result is right, and
a job that runs twice still stamps a right result. This module knows leases,
the clock and the poll; the core hands it the fetch of the stamp. It is
imported only on a remote miss: threading stays off the path of a hit.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import socket
import time

from . import _config, _log
from ._sharing import local_only, portable, remote_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from ._freshness import Call, Miss
    from ._stampfile import Dependencies
    from .remote._common import LeasingStore

    Fetch = Callable[[], tuple[object, Miss | None]]

DEFAULT_TTL = 30.0
DEFAULT_WAIT = 300.0
# A waiter polls the lease first after MIN_POLL seconds, then after a tenth of
# the time it has waited so far (so it finds a stamp at most about 10% later
# than it appeared), never more than MAX_POLL apart; each pause is drawn
# within JITTER of that, so that waiters started together spread out.
MIN_POLL = 0.02
POLL_GROWTH = 0.1
MAX_POLL = 1.0
JITTER = 0.25
# A holder that ends without a stamp says so, for one TTL, under its lease's
# key with this suffix.
FAILED_SUFFIX = "/failed"
# The holder renews its lease this many times per time-to-live, so that a
# renewal or two may be late or lost before the lease expires.
RENEWALS_PER_TTL = 3


def lease_for(
    remote: object,
    function: str,
    call: Call,
    root: str,
    wait: float | None,
    fetch: Fetch,
) -> Lease | None:
    """
    The lease of *call* in *remote*, not taken yet; None if *remote* holds
    no leases.

    Args:
        root: The project root shared stamps name files from.
        wait: Most seconds to wait for another holder; None for
            ``$JOBSTAMPS_LEASE_WAIT``, else :data:`DEFAULT_WAIT`.
        fetch: Looks the call's stamp up in *remote*: its result and None,
            or None and the miss.
    """
    from .remote._common import has_leases

    if not has_leases(remote):
        return None
    ttl = _seconds(_config.LEASE_TTL, DEFAULT_TTL, positive=True)
    if wait is None:
        wait = _seconds(_config.LEASE_WAIT, DEFAULT_WAIT, positive=False)
    return Lease(remote, function, call, root, wait, ttl, fetch)


def _seconds(name: str, default: float, positive: bool) -> float:
    text = _config.setting(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    # A lease must expire; a wait may last as long as a live lease does.
    if (value > 0 and math.isfinite(value)) if positive else value >= 0:
        return value
    _log.warn(
        f"ignoring {name}={text!r}: use a number of seconds "
        f"{'above 0' if positive else '0 or more'}; using {default:g}"
    )
    return default


class Lease:
    """
    The lease of one call in a remote store: taken, or waited for.

    After :meth:`wait_or_take`, *found* says whether the stamp arrived while
    waiting (its result is *result*), and *waited_ns* how long this call
    waited for another holder (0 if it did not wait). :meth:`release` gives
    the lease up, if held: call it once the stamp is published, or the job
    ended without one.
    """

    __slots__ = (
        "_call",
        "_fetch",
        "_function",
        "_held",
        "_key",
        "_owner",
        "_pid",
        "_remote",
        "_root",
        "_stop",
        "found",
        "result",
        "ttl",
        "wait",
        "waited_ns",
    )

    def __init__(
        self,
        remote: LeasingStore,
        function: str,
        call: Call,
        root: str,
        wait: float,
        ttl: float,
        fetch: Fetch,
    ) -> None:
        self._remote = remote
        self._function = function
        self._call = call
        self._root = root
        self._fetch = fetch
        self.wait = wait
        self.ttl = ttl
        self._key = ""
        # Who holds a lease, in logs and in the store: this machine, this
        # process, and this acquisition.
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._pid = os.getpid()
        self._held = False
        self._stop: threading.Event | None = None
        self.found = False
        self.result: object = None
        self.waited_ns = 0

    def wait_or_take(self, dependencies: Dependencies) -> bool:
        """
        Whether the stamp arrived while waiting for another holder; if not,
        the caller runs the job, holding the lease if it could take it.

        *dependencies* are the call's fingerprints, taken before the run:
        a stamp that will not be shared takes no lease, and the lease is
        that of the call with these contents.
        """
        reason = local_only(dependencies, self._call.outputs, self._root)
        if reason is not None:
            _log.debug("%s: taking no lease: %s", self._function, reason)
            return False
        self._key = self._lease_key(dependencies)
        started = time.monotonic_ns()
        try:
            self.found = self._wait_or_take(started)
        except _Failed:
            pass  # run, as without a remote
        return self.found

    def release(self, published: bool = True) -> None:
        """
        Stop renewing the lease, and give it up if this process holds it.

        Unless the stamp was *published* (the job raised, was interrupted,
        or its result was not stamped), the call is first marked as failed
        for one TTL: its waiters then run the job at once, each on its own
        machine, rather than one after another.
        """
        if self._stop is not None:
            self._stop.set()
        if not self._held or self._pid != os.getpid():
            return  # a child forked by the job must not free its parent's lease
        self._held = False
        try:
            if not published:
                self._remote.acquire_lease(
                    self._key + FAILED_SUFFIX, self._owner, self.ttl
                )
            self._remote.release_lease(self._key, self._owner)
        except Exception as e:
            _log.debug("%s: could not release the lease: %r", self._function, e)
            return
        _log.debug(
            "%s: released the lease, held as %s%s",
            self._function,
            self._owner,
            "" if published else ", with no stamp: its waiters run at once",
        )

    def _wait_or_take(self, started: int) -> bool:
        holder: str | None = None
        while True:
            if self._ask("acquire_lease", self._owner, self.ttl):
                self._held = True
                # The holder may have published and released between the
                # miss and now: look once more before running.
                result, miss = self._fetch()
                if miss is None:
                    self.release()
                    return self._arrived(result, holder, started)
                self._heartbeat()
                if holder is None:
                    _log.debug(
                        "%s: took the lease in %s as %s",
                        self._function,
                        self._remote.url,
                        self._owner,
                    )
                else:
                    self.waited_ns = time.monotonic_ns() - started
                    _log.debug(
                        "%s: took the lease as %s after waiting %.2f s: %s let it "
                        "expire",
                        self._function,
                        self._owner,
                        self.waited_ns / 1e9,
                        holder,
                    )
                return False
            if holder is None:
                holder = str(self._ask("lease_holder") or "another caller")
                if self.wait > 0:
                    _log.debug(
                        "%s: waiting up to %g s for %s, which holds the lease in %s",
                        self._function,
                        self.wait,
                        holder,
                        self._remote.url,
                    )
            if not self._until_free(started, holder):
                return False
            # The lease is gone: its holder published the stamp and released
            # it, or failed, or died. Take the stamp; or run at once after a
            # failure (a failure is not shared, and waiting for machines to
            # fail one after another would only delay them); or else take
            # the lease of a holder that died.
            result, miss = self._fetch()
            if miss is None:
                return self._arrived(result, holder, started)
            if self._ask("lease_holder", key=self._key + FAILED_SUFFIX):
                self.waited_ns = time.monotonic_ns() - started
                _log.debug(
                    "%s: running after waiting %.2f s: %s ended without a stamp",
                    self._function,
                    self.waited_ns / 1e9,
                    holder,
                )
                return False

    def _until_free(self, started: int, holder: str) -> bool:
        """
        Poll until the lease is free (True), or *wait* is over (False).
        """
        while True:
            elapsed = (time.monotonic_ns() - started) / 1e9
            if elapsed >= self.wait:
                if self.wait > 0:
                    self.waited_ns = time.monotonic_ns() - started
                    _log.debug(
                        "%s: running after waiting %.2f s for %s, as long as "
                        "lease_wait allows",
                        self._function,
                        self.waited_ns / 1e9,
                        holder,
                    )
                else:
                    _log.debug(
                        "%s: running without waiting (lease_wait is 0); %s holds "
                        "the lease",
                        self._function,
                        holder,
                    )
                return False
            pause = min(MAX_POLL, max(MIN_POLL, elapsed * POLL_GROWTH))
            pause *= random.uniform(1 - JITTER, 1 + JITTER)
            time.sleep(min(pause, self.wait - elapsed))
            if self._ask("lease_holder") is None:
                return True

    def _arrived(self, result: object, holder: str | None, started: int) -> bool:
        self.result = result
        if holder is not None:
            self.waited_ns = time.monotonic_ns() - started
            _log.debug(
                "%s: hit after waiting %.2f s for %s",
                self._function,
                self.waited_ns / 1e9,
                holder,
            )
        return True

    def _ask(self, method: str, *args: object, key: str | None = None) -> object:
        try:
            return getattr(self._remote, method)(key or self._key, *args)
        except Exception as e:
            # A store of the user's own, unguarded: run as without a remote.
            _log.debug(
                "%s: remote store %s failed (%s: %r); running without a lease",
                self._function,
                self._remote.url,
                method,
                e,
            )
            raise _Failed from e

    def _lease_key(self, dependencies: Dependencies) -> str:
        # The call, and the contents it runs on: machines whose files differ
        # make different stamps, and need not wait for each other.
        names = portable(tuple(path for path, _ in dependencies), self._root)
        outputs = portable(self._call.outputs, self._root)
        assert names is not None and outputs is not None
        contents = [
            (name, fp and fp[1:3])
            for name, (_, fp) in zip(names, dependencies, strict=True)
        ]
        digest = hashlib.sha256(repr((contents, outputs)).encode()).hexdigest()
        return f"{remote_key(self._function, self._call.path)}/{digest[:32]}"

    def _heartbeat(self) -> None:
        # A thread rather than renewals at checkpoints: the job is the
        # user's code, or a command, and has no checkpoints to renew at.
        # Started only here, by a caller that runs a shared job after a
        # remote miss.
        import threading

        stop = self._stop = threading.Event()
        threading.Thread(
            target=self._renew, args=(stop,), name="jobstamps-lease", daemon=True
        ).start()

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / RENEWALS_PER_TTL):
            try:
                held = self._remote.renew_lease(self._key, self._owner, self.ttl)
            except Exception as e:
                _log.debug("%s: could not renew the lease: %r", self._function, e)
                return
            if not held:
                _log.debug(
                    "%s: lost the lease held as %s (it expired); running on",
                    self._function,
                    self._owner,
                )
                return


class _Failed(Exception):
    """
    The remote store failed while asked about a lease.
    """
