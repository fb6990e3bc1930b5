"""
A remote hit over loopback Redis, against a local hit and a miss; and eight
processes hitting the remote at once.

Run it with the Python of an environment where jobstamps is installed with
its redis extra, on a machine with redis-server::

    python benchmarks/remote.py [--calls 300] [--processes 8]

It starts its own redis-server on a free loopback port and stops it at the
end. A "remote hit" is a call whose local cache is empty (a fresh cache
directory per call, as on a fresh CI machine) and whose stamp is in Redis: it
fetches, verifies the signature, checks the dependencies by content, copies
the stamp to the local cache and returns the result.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

from redis_server import start_redis

SECRET = "benchmark secret, not a real one"
DEPENDENCIES = 20


def make_project(directory: str) -> list[str]:
    os.makedirs(os.path.join(directory, ".git"))
    paths = []
    for i in range(DEPENDENCIES):
        path = os.path.join(directory, f"src{i}.py")
        with open(path, "w") as f:
            f.write(f"# module {i}\n" * 50)
        old = time.time() - 60  # a checkout made a minute ago
        os.utime(path, (old, old))
        paths.append(f"src{i}.py")
    return paths


def lint(path: str) -> list[str]:
    return [f"{path}: ok"] * 10


def job(url: str, cache_dir: str, dependencies: list[str]) -> object:
    from jobstamps import HashMethod, jobstamped

    return jobstamped(
        dependencies=dependencies,
        method=HashMethod,
        store=url,
        secret=SECRET,
        cache_dir=cache_dir,
    )(lint)


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def time_calls(make_call, calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        call = make_call(i)
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def remote_hits(args: tuple[str, str, str, list[str], int, int]) -> list[float]:
    url, project, scratch, dependencies, calls, worker = args
    os.chdir(project)
    return time_calls(
        lambda i: (
            lambda: job(url, os.path.join(scratch, f"w{worker}-{i}"), dependencies)(
                "a.py"
            )
        ),
        calls,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--processes", type=int, default=8)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as top:
        server, url = start_redis(top)
        try:
            project = os.path.join(top, "project")
            dependencies = make_project(project)
            os.chdir(project)
            scratch = os.path.join(top, "scratch")

            # Warm: the imports, the connection, and the stamp in Redis.
            job(url, os.path.join(scratch, "warm"), dependencies)("a.py")

            local = job(url, os.path.join(scratch, "local"), dependencies)
            local("a.py")
            local_hit = time_calls(lambda i: lambda: local("a.py"), options.calls)
            remote_hit = time_calls(
                lambda i: (
                    lambda: job(url, os.path.join(scratch, f"r{i}"), dependencies)(
                        "a.py"
                    )
                ),
                options.calls,
            )
            miss = time_calls(
                lambda i: (
                    lambda: job(url, os.path.join(scratch, f"m{i}"), dependencies)(
                        f"b{i}.py"
                    )
                ),
                options.calls,
            )

            start = time.perf_counter()
            with multiprocessing.get_context("spawn").Pool(options.processes) as pool:
                per_process = pool.map(
                    remote_hits,
                    [
                        (url, project, scratch, dependencies, options.calls, w)
                        for w in range(options.processes)
                    ],
                )
            elapsed = time.perf_counter() - start
        finally:
            server.kill()
            server.wait()

    concurrent = [s for samples in per_process for s in samples]
    print(
        f"{DEPENDENCIES} dependencies (HashMethod), {options.calls} calls each, loopback Redis"
    )
    print(f"  local hit                    {median_us(local_hit):9.1f} us")
    print(f"  remote hit (empty local)     {median_us(remote_hit):9.1f} us")
    print(f"  miss (run, stamp, upload)    {median_us(miss):9.1f} us")
    print(
        f"  remote hit, {options.processes} processes at once "
        f"{median_us(concurrent):9.1f} us median, "
        f"{len(concurrent) / elapsed:,.0f} hits/s in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
