"""
Where the project's side of scenarios 1, 2, 3 and 6 spends its time.

Run in the benchmark's environment (made by ``run.py``)::

    benchmarks/.envs/current/bin/python benchmarks/profile_hot.py [1 2 3 6]

Prints cProfile's top functions by own time for each scenario's hit (and, for
6, the first call and the hit). cProfile's overhead is large on paths this
short, so read the shares, not the absolute times.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from jobstamps import HashMethod, MTimeMethod, jobstamp, jobstamped

from internals import store_dropper


def f(x: int) -> int:
    return x + 1


def deps_target(x: int) -> int:
    return x + 1


PAYLOAD = b""


def big_result() -> bytes:
    return PAYLOAD


def profile(title: str, op, n: int, limit: int = 14) -> None:
    op()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        op()
    profiler.disable()
    per = (time.perf_counter() - start) / n
    print(f"\n=== {title}: {n} calls, {per * 1e6:.1f} us per call under the profiler")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(limit)


def files(folder: Path, count: int) -> list[str]:
    folder.mkdir()
    when = time.time() - 5
    paths = []
    for i in range(count):
        path = folder / f"f{i}.txt"
        path.write_bytes(os.urandom(2048))
        os.utime(path, (when, when))
        paths.append(str(path))
    return paths


def main(wanted: list[str]) -> None:
    global PAYLOAD
    work = Path(tempfile.mkdtemp(prefix="jobstamps-profile-"))
    if "1" in wanted:
        deco = jobstamped(cache_dir=str(work / "s1"))(f)
        profile("1. hit, no dependencies: @jobstamped", lambda: deco(3), 20000)
        d = str(work / "s1-shim")
        profile(
            "1. hit, no dependencies: jobstamp.run",
            lambda: jobstamp.run(f, 3, jobstamps_cache_output_directory=d),
            20000,
        )
    for number, method in (("2", MTimeMethod), ("3", HashMethod)):
        if number in wanted:
            paths = files(work / f"files{number}", 1000)
            deco = jobstamped(
                dependencies=paths, method=method, cache_dir=str(work / number)
            )(deps_target)
            profile(
                f"{number}. hit, 1,000 dependencies, {method.__name__}",
                lambda d=deco: d(3),
                300,
            )
    if "6" in wanted:
        PAYLOAD = os.urandom(200 * 10**6)
        deco = jobstamped(cache_dir=str(work / "s6"))(big_result)
        drop_stores = store_dropper()

        def first() -> None:
            deco.clear()
            deco()

        def hit() -> None:
            drop_stores()
            deco()

        profile("6. 200 MB result: first call (stamp)", first, 5)
        profile("6. 200 MB result: hit (load)", hit, 5)
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["1", "2", "3", "6"])
