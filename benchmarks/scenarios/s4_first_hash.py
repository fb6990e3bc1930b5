"""
Scenario 4: the first hash of large dependencies, the page cache warm.

The first call of a ``HashMethod`` job (fingerprint, run, stamp) with one
256 MiB dependency (4a), and with 10,000 of 4 KiB (4c), against SHA-256 by
``hashlib`` over the same bytes; other digests over the 256 MiB, numbers only
(4b); and the peak RSS growth of a first call with a 1 GiB dependency, in
child processes (4d).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from jobstamps import HashMethod, jobstamped

from envs import clean_env
from harness import Bench, Contender, make_files, write_big
from report import MiB, fmt_rate, fmt_time, rates

JOBSTAMPS = "jobstamps first call (HashMethod)"
STREAMING = "floor: sha256 streaming readinto 1 MiB"
FILE_DIGEST = "floor: hashlib.file_digest sha256"


def first_hash_target(n: int) -> int:
    return n


def run(bench: Bench) -> None:
    big = bench.work / "s4-big.bin"
    size = 256 * MiB
    write_big(big, size)
    streaming = _streaming(big)
    sha256_time = _one_big_file(bench, big, size, streaming)
    _digest_candidates(bench, size, streaming, sha256_time)
    _small_files(bench)
    big.unlink()
    _memory(bench)


def _streaming(
    path: Path,
) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """
    Digests of *path* read with ``readinto`` into one 1 MiB buffer, by the
    hash object its argument makes.
    """
    buffer = bytearray(MiB)
    view = memoryview(buffer)

    def streaming(make: Callable[[], object]) -> Callable[[], object]:
        def op() -> object:
            h = make()
            with open(path, "rb", buffering=0) as file:
                while n := file.readinto(buffer):
                    h.update(view[:n])  # type: ignore[attr-defined]
            return h.hexdigest()  # type: ignore[attr-defined]

        return op

    return streaming


def _one_big_file(
    bench: Bench,
    big: Path,
    size: int,
    streaming: Callable[[Callable[[], object]], Callable[[], object]],
) -> float:
    """
    4a; returns the streaming floor's time, the unit of 4b.
    """

    def file_digest() -> object:
        with open(big, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()

    deco = jobstamped(
        dependencies=[str(big)], method=HashMethod, cache_dir=bench.dir("s4-deco")
    )(first_hash_target)
    contenders = [
        Contender(JOBSTAMPS, lambda: deco(1), prepare=deco.clear, n=1),
        Contender(STREAMING, streaming(hashlib.sha256), n=1),
        Contender(FILE_DIGEST, file_digest, n=1),
    ]
    streaming(hashlib.sha256)()  # bring the file into the page cache
    m = bench.measure(contenders, bench.few_rounds)
    r = bench.report
    title = "4a. first hash of one 256 MiB file (throughput, page cache warm)"
    r.table(title, [(k, fmt_rate(size, v), fmt_time(v)) for k, v in m.items()])
    p = r.panel("4a", title, rates(size, m), "MiB/s")
    fastest = min((STREAMING, FILE_DIGEST), key=m.__getitem__)
    p.ratio(
        "S4 256 MiB: jobstamps throughput / fastest sha256 floor",
        JOBSTAMPS,
        fastest,
        0.9,
    )
    r.scenarios["4a"] = m
    return m[STREAMING]


def _digest_candidates(
    bench: Bench,
    size: int,
    streaming: Callable[[Callable[[], object]], Callable[[], object]],
    sha256_time: float,
) -> None:
    """
    4b: other digests over the same file, numbers only.
    """
    candidates: list[Contender] = []
    for name in ("sha256", "sha1", "md5", "blake2b"):
        candidates.append(
            Contender(
                f"hashlib {name}",
                streaming(functools.partial(hashlib.new, name)),
                n=1,
            )
        )
    try:
        import blake3

        candidates.append(Contender("blake3 (1 thread)", streaming(blake3.blake3), n=1))
        candidates.append(
            Contender(
                "blake3 (all cores, 1 MiB updates)",
                streaming(lambda: blake3.blake3(max_threads=blake3.blake3.AUTO)),
                n=1,
            )
        )
    except ImportError:
        print("  blake3 not installed")
    try:
        import xxhash

        candidates.append(Contender("xxhash xxh3_128", streaming(xxhash.xxh3_128), n=1))
        candidates.append(Contender("xxhash xxh64", streaming(xxhash.xxh64), n=1))
    except ImportError:
        print("  xxhash not installed")
    mc = bench.measure(candidates, bench.few_rounds)
    title = "4b. digest candidates over the same 256 MiB (streaming, 1 MiB reads)"
    bench.report.table(
        title,
        [
            (k, fmt_rate(size, v), f"{sha256_time / v:.2f}x sha256")
            for k, v in mc.items()
        ],
    )
    bench.report.panel("4b", title, rates(size, mc), "MiB/s")
    bench.report.scenarios["4b"] = mc


def _small_files(bench: Bench) -> None:
    """
    4c: 10,000 files of 4 KiB.
    """
    small = make_files(bench.work / "s4-small", 10_000, 4096)
    total = sum(os.path.getsize(p) for p in small)
    deco_small = jobstamped(
        dependencies=small, method=HashMethod, cache_dir=bench.dir("s4-small-deco")
    )(first_hash_target)

    def small_floor() -> None:
        for p in small:
            with open(p, "rb") as file:
                hashlib.sha256(file.read()).hexdigest()

    def small_file_digest() -> None:
        for p in small:
            with open(p, "rb") as file:
                hashlib.file_digest(file, "sha256").hexdigest()

    def small_os_read() -> None:
        for p in small:
            fd = os.open(p, os.O_RDONLY)
            try:
                hashlib.sha256(os.read(fd, 1 << 20)).hexdigest()
            finally:
                os.close(fd)

    small_floor()
    ms = bench.measure(
        [
            Contender(JOBSTAMPS, lambda: deco_small(2), prepare=deco_small.clear, n=1),
            Contender("floor: open+read+sha256 per file", small_floor, n=1),
            Contender("floor: os.open+os.read+sha256 per file", small_os_read, n=1),
            Contender("floor: hashlib.file_digest per file", small_file_digest, n=1),
        ],
        bench.few_rounds,
    )
    r = bench.report
    title = f"4c. first hash of 10,000 files of 4 KiB ({total / MiB:.0f} MiB)"
    r.table(title, [(k, fmt_rate(total, v), fmt_time(v)) for k, v in ms.items()])
    p = r.panel("4c", title, rates(total, ms), "MiB/s")
    fastest = min((k for k in ms if k.startswith("floor:")), key=ms.__getitem__)
    p.ratio(
        "S4 10,000 files: jobstamps throughput / fastest sha256 floor",
        JOBSTAMPS,
        fastest,
        0.9,
    )
    r.scenarios["4c"] = ms


# Linux carries the peak RSS of the process that forks into the child's
# ru_maxrss; a small interpreter in between keeps the benchmark's (possibly
# large) peak out of the probe's baseline.
HOP = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"

MEMORY_PROBES = {
    JOBSTAMPS: """
import json, resource, sys
from jobstamps import HashMethod, jobstamped
def mem_target():
    return 1
f = jobstamped(dependencies=[sys.argv[1]], method=HashMethod, cache_dir=sys.argv[2])(mem_target)
f.clear()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
f()
print(json.dumps([before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))
""",
    FILE_DIGEST: """
import hashlib, json, resource, sys
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "rb") as file:
    hashlib.file_digest(file, "sha256")
print(json.dumps([before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))
""",
    "sanity: sha256 of the whole file read at once": """
import hashlib, json, resource, sys
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "rb") as file:
    hashlib.sha256(file.read())
print(json.dumps([before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))
""",
}


def _memory(bench: Bench) -> None:
    """
    4d: peak RSS growth while hashing a 1 GiB dependency, in child processes.
    """
    huge = bench.work / "s4-huge.bin"
    write_big(huge, 1024 * MiB)
    rows = []
    growth = {}
    for label, code in MEMORY_PROBES.items():
        argv = [sys.executable, "-c", HOP, sys.executable, "-c", code]
        out = subprocess.run(
            [*argv, str(huge), bench.dir("s4-mem")],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout
        before, after = json.loads(out)
        growth[label] = (after - before) * 1024
        rows.append(
            (
                label,
                f"{growth[label] / MiB:.1f} MiB",
                f"peak RSS growth (ru_maxrss {before / 1024:.0f} -> {after / 1024:.0f} MiB)",
            )
        )
    huge.unlink()
    r = bench.report
    title = "4d. memory while hashing a 1 GiB dependency (child processes)"
    r.table(title, rows)
    p = r.panel("4d", title, {k: v / MiB for k, v in growth.items()}, "MiB")
    p.at_most("S4 1 GiB: jobstamps peak RSS growth", JOBSTAMPS, 64, "MiB")
    r.scenarios["4d"] = growth
