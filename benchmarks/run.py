"""
jobstamps side by side with its peers, in one run: ``python benchmarks/run.py``.

The first run makes two virtual environments under ``benchmarks/.envs/``
(git-ignored): ``current`` (this checkout, editable, with the peers and a
do-nothing console script) and ``legacy`` (jobstamps 0.0.20 from PyPI). The
measurements then run in ``current``; 0.0.20 is timed by a worker process in
``legacy``, round by round between the others, so every ratio compares
figures taken in the same minutes. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import internals
from envs import (
    CURRENT,
    DATA,
    LEGACY,
    LEGACY_REQUIREMENT,
    bin_path,
    clean_env,
    ensure_envs,
)
from harness import (
    Bench,
    Contender,
    Legacy,
    make_files,
    then_sync,
    time_commands,
    write_big,
)
from report import MiB, Report, fmt_rate, fmt_time, machine, summary, versions


def f(x: int) -> int:
    return x + 1


def deps_target(x: int) -> int:
    return x + 1


def scale_target(i: int) -> int:
    return i * 2


def first_hash_target(n: int) -> int:
    return n


PAYLOAD: bytes = b""


def big_result() -> bytes:
    return PAYLOAD


# --------------------------------------------------------------------------
# Scenarios


class Scenarios(Bench):
    # 1 ---------------------------------------------------------------
    def s1_hit_nodeps(self) -> None:
        import diskcache
        import joblib

        from jobstamps import jobstamp, jobstamped

        deco = jobstamped(cache_dir=self.dir("s1-deco"))(f)
        shim_dir = self.dir("s1-shim")
        assert deco(3) == 4 and deco(3) == 4
        assert deco.out_of_date(3) is None
        jobstamp.run(f, 3, jobstamps_cache_output_directory=shim_dir)

        def shim() -> object:
            return jobstamp.run(f, 3, jobstamps_cache_output_directory=shim_dir)

        dc = diskcache.Cache(self.dir("s1-diskcache"))
        dc_f = dc.memoize()(f)
        dc_f(3)
        jl_f = joblib.Memory(self.dir("s1-joblib"), verbose=0).cache(f)
        jl_f(3)
        lru = functools.lru_cache(maxsize=None)(f)
        lru(3)
        contenders = [
            Contender("jobstamps @jobstamped", lambda: deco(3)),
            Contender("jobstamps jobstamp.run shim", shim),
            self.legacy.contender(
                "jobstamps 0.0.20 run", kind="nodeps", cache=self.dir("s1-legacy")
            ),
            Contender("diskcache memoize", lambda: dc_f(3)),
            Contender("joblib.Memory", lambda: jl_f(3)),
            Contender("floor: functools.lru_cache", lambda: lru(3)),
        ]
        m = self.measure(contenders)
        dc.close()
        self.report.times_table(
            "1. hit, no dependencies, small arguments (per call)",
            m,
            "floor: functools.lru_cache",
        )
        r = self.report
        for who in ("jobstamps @jobstamped", "jobstamps jobstamp.run shim"):
            r.check(f"S1 {who} / 0.0.20 run", m[who] / m["jobstamps 0.0.20 run"], 0.25)
            r.check(
                f"S1 {who} / diskcache memoize", m[who] / m["diskcache memoize"], 0.33
            )
        r.info(
            "S1 @jobstamped / joblib.Memory",
            m["jobstamps @jobstamped"] / m["joblib.Memory"],
        )
        r.info(
            "S1 @jobstamped / lru_cache",
            m["jobstamps @jobstamped"] / m["floor: functools.lru_cache"],
        )
        r.scenarios["1"] = m

    # 2, 3 ------------------------------------------------------------
    def s23_hit_deps(self, method_name: str) -> None:
        from jobstamps import HashMethod, MTimeMethod, jobstamp, jobstamped

        number = "2" if method_name == "mtime" else "3"
        method = MTimeMethod if method_name == "mtime" else HashMethod
        paths = make_files(self.work / f"s{number}-files", 1000, 2048)
        paths_file = self.work / f"s{number}-paths.txt"
        paths_file.write_text("\n".join(paths))
        deco = jobstamped(
            dependencies=paths, method=method, cache_dir=self.dir(f"s{number}-deco")
        )(deps_target)
        deco(3)
        assert deco.out_of_date(3) is None
        shim_dir = self.dir(f"s{number}-shim")

        def shim() -> object:
            return jobstamp.run(
                deps_target,
                3,
                jobstamps_dependencies=paths,
                jobstamps_cache_output_directory=shim_dir,
                jobstamps_method=method,
            )

        shim()
        stat = os.stat

        def stat_loop() -> None:
            for p in paths:
                stat(p)

        contenders = [
            Contender("jobstamps @jobstamped", lambda: deco(3)),
            Contender("jobstamps jobstamp.run shim", shim),
            Contender("floor: os.stat loop", stat_loop),
            self.legacy.contender(
                "jobstamps 0.0.20 run",
                kind="deps",
                cache=self.dir(f"s{number}-legacy"),
                paths_file=str(paths_file),
                method=method_name,
            ),
        ]
        m = self.measure(contenders)
        title = (
            "MTimeMethod" if method_name == "mtime" else "HashMethod, files unchanged"
        )
        self.report.times_table(
            f"{number}. hit, 1,000 dependency files, {title} (per call)",
            m,
            "floor: os.stat loop",
        )
        limit = 1.2 if method_name == "mtime" else 1.3
        r = self.report
        r.check(
            f"S{number} @jobstamped / os.stat loop",
            m["jobstamps @jobstamped"] / m["floor: os.stat loop"],
            limit,
        )
        r.info(
            f"S{number} jobstamp.run shim / os.stat loop",
            m["jobstamps jobstamp.run shim"] / m["floor: os.stat loop"],
        )
        r.info(
            f"S{number} @jobstamped / 0.0.20 run",
            m["jobstamps @jobstamped"] / m["jobstamps 0.0.20 run"],
        )
        r.scenarios[number] = m

    # 4 ---------------------------------------------------------------
    def s4_first_hash(self) -> None:
        from jobstamps import HashMethod, jobstamped

        r = self.report
        big = self.work / "s4-big.bin"
        size = 256 * MiB
        write_big(big, size)
        rounds = self.few_rounds
        buffer = bytearray(MiB)
        view = memoryview(buffer)

        def streaming(make: Callable[[], object]) -> Callable[[], object]:
            def op() -> object:
                h = make()
                with open(big, "rb", buffering=0) as file:
                    while n := file.readinto(buffer):
                        h.update(view[:n])  # type: ignore[attr-defined]
                return h.hexdigest()  # type: ignore[attr-defined]

            return op

        def file_digest() -> object:
            with open(big, "rb") as file:
                return hashlib.file_digest(file, "sha256").hexdigest()

        deco = jobstamped(
            dependencies=[str(big)], method=HashMethod, cache_dir=self.dir("s4-deco")
        )(first_hash_target)
        contenders = [
            Contender(
                "jobstamps first call (HashMethod)",
                lambda: deco(1),
                prepare=deco.clear,
                n=1,
            ),
            Contender(
                "floor: sha256 streaming readinto 1 MiB", streaming(hashlib.sha256), n=1
            ),
            Contender("floor: hashlib.file_digest sha256", file_digest, n=1),
        ]
        streaming(hashlib.sha256)()  # bring the file into the page cache
        m = self.measure(contenders, rounds)
        rows = [(k, fmt_rate(size, v), fmt_time(v)) for k, v in m.items()]
        self.report.table(
            "4a. first hash of one 256 MiB file (throughput, page cache warm)", rows
        )
        floor = min(
            m["floor: sha256 streaming readinto 1 MiB"],
            m["floor: hashlib.file_digest sha256"],
        )
        r.check(
            "S4 256 MiB: jobstamps throughput / fastest sha256 floor",
            floor / m["jobstamps first call (HashMethod)"],
            0.9,
            "min",
        )
        r.scenarios["4a"] = m

        # Digest candidates, numbers only.
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

            candidates.append(
                Contender("blake3 (1 thread)", streaming(blake3.blake3), n=1)
            )
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

            candidates.append(
                Contender("xxhash xxh3_128", streaming(xxhash.xxh3_128), n=1)
            )
            candidates.append(Contender("xxhash xxh64", streaming(xxhash.xxh64), n=1))
        except ImportError:
            print("  xxhash not installed")
        mc = self.measure(candidates, rounds)
        self.report.table(
            "4b. digest candidates over the same 256 MiB (streaming, 1 MiB reads)",
            [
                (
                    k,
                    fmt_rate(size, v),
                    f"{m['floor: sha256 streaming readinto 1 MiB'] / v:.2f}x sha256",
                )
                for k, v in mc.items()
            ],
        )
        r.scenarios["4b"] = mc

        # 10,000 small files.
        small = make_files(self.work / "s4-small", 10_000, 4096)
        total = sum(os.path.getsize(p) for p in small)
        deco_small = jobstamped(
            dependencies=small, method=HashMethod, cache_dir=self.dir("s4-small-deco")
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
        ms = self.measure(
            [
                Contender(
                    "jobstamps first call (HashMethod)",
                    lambda: deco_small(2),
                    prepare=deco_small.clear,
                    n=1,
                ),
                Contender("floor: open+read+sha256 per file", small_floor, n=1),
                Contender("floor: os.open+os.read+sha256 per file", small_os_read, n=1),
                Contender(
                    "floor: hashlib.file_digest per file", small_file_digest, n=1
                ),
            ],
            rounds,
        )
        self.report.table(
            f"4c. first hash of 10,000 files of 4 KiB ({total / MiB:.0f} MiB)",
            [(k, fmt_rate(total, v), fmt_time(v)) for k, v in ms.items()],
        )
        floor = min(v for k, v in ms.items() if k.startswith("floor:"))
        r.check(
            "S4 10,000 files: jobstamps throughput / fastest sha256 floor",
            floor / ms["jobstamps first call (HashMethod)"],
            0.9,
            "min",
        )
        r.scenarios["4c"] = ms
        big.unlink()

        # Memory, in child processes: peak RSS growth while hashing 1 GiB.
        huge = self.work / "s4-huge.bin"
        write_big(huge, 1024 * MiB)
        rows = []
        growth = {}
        for label, code in MEMORY_PROBES.items():
            # Linux carries the peak RSS of the process that forks into the
            # child's ru_maxrss; a small interpreter in between keeps this
            # (possibly large) process's peak out of the probe's baseline.
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    HOP,
                    sys.executable,
                    "-c",
                    code,
                    str(huge),
                    self.dir("s4-mem"),
                ],
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
        self.report.table(
            "4d. memory while hashing a 1 GiB dependency (child processes)", rows
        )
        r.check(
            "S4 1 GiB: jobstamps peak RSS growth",
            growth["jobstamps first call (HashMethod)"] / MiB,
            64,
            unit="MiB",
        )
        r.scenarios["4d"] = growth

    # 5 ---------------------------------------------------------------
    def s5_scale(self) -> None:
        from jobstamps import jobstamped

        drop_stores = internals.store_dropper()
        count = 100_000 if self.quick else 1_000_000
        big_root = self._stamp_farm(count)
        small_root = self.dir("s5-ten")
        small = jobstamped(cache_dir=small_root)(scale_target)
        big = jobstamped(cache_dir=big_root)(scale_target)
        for i in range(10):
            small(i)
            big(i)
        assert big.out_of_date(3) is None and small.out_of_date(3) is None

        def cycle(fn: Callable[[int], object], reset: bool) -> Callable[[], object]:
            state = [0]

            def op() -> object:
                i = state[0] = (state[0] + 1) % 10
                if reset:
                    drop_stores()  # the stamp is read from disk again
                return fn(i)

            return op

        m = self.measure(
            [
                Contender("10 stamps, in-process store warm", cycle(small, False)),
                Contender(
                    f"{count:,} stamps, in-process store warm", cycle(big, False)
                ),
                Contender("10 stamps, stamp re-read each call", cycle(small, True)),
                Contender(
                    f"{count:,} stamps, stamp re-read each call", cycle(big, True)
                ),
            ],
        )
        self.report.table(
            f"5. hit latency with {count:,} stamps in the cache dir vs 10 (per call)",
            [(k, fmt_time(v), "") for k, v in m.items()],
        )
        r = self.report
        r.check(
            f"S5 {count:,} vs 10 stamps, store warm",
            m[f"{count:,} stamps, in-process store warm"]
            / m["10 stamps, in-process store warm"],
            1.2,
        )
        r.check(
            f"S5 {count:,} vs 10 stamps, stamp re-read",
            m[f"{count:,} stamps, stamp re-read each call"]
            / m["10 stamps, stamp re-read each call"],
            1.2,
        )
        r.scenarios["5"] = m

    def _stamp_farm(self, count: int) -> str:
        """
        A cache dir holding *count* valid stamps of ``scale_target`` (random
        keys), written straight in the stamp file encoding where the store
        would put them; kept under .envs/data between runs.
        """
        from jobstamps import jobstamped

        # Where the store files a stamp of scale_target: its folder, and the
        # fan-out of the digest into subfolders (ab/cd/abcd...).
        probe = Path(self.dir("s5-probe"))
        jobstamped(cache_dir=str(probe))(scale_target)(0)
        (sample,) = (p for p in probe.rglob("*") if p.is_file())
        folder, *fan_out, name = sample.relative_to(probe).parts
        widths = [len(part) for part in fan_out]
        assert "".join(fan_out) == name[: sum(widths)], sample
        identity = json.dumps(
            {
                "count": count,
                "folder": folder,
                "fan-out": widths,
                "format": internals.stamp_format(),
            }
        )
        root = DATA / f"stamps-{count}"
        marker = root / "complete.json"
        if marker.exists() and marker.read_text() == identity:
            return str(root)
        print(
            f"  writing {count:,} stamp files under {root} (kept for later runs) ...",
            flush=True,
        )
        shutil.rmtree(root, ignore_errors=True)
        encoded = internals.stamp_encoder()
        made: set[str] = set()
        now = time.time_ns()
        rng = random.Random(1)
        for i in range(count):
            digest = rng.randbytes(len(name) // 2).hex()
            levels, start = [], 0
            for width in widths:
                levels.append(digest[start : start + width])
                start += width
            parent = os.path.join(root, folder, *levels)
            if parent not in made:
                os.makedirs(parent, 0o700, exist_ok=True)
                made.add(parent)
            data = encoded(now, pickle.dumps(i * 2, pickle.HIGHEST_PROTOCOL))
            path = os.path.join(parent, digest)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.close(fd)
        marker.write_text(identity)
        os.sync()
        return str(root)

    # 6 ---------------------------------------------------------------
    def s6_large_result(self) -> None:
        import diskcache
        import joblib

        from jobstamps import jobstamped

        global PAYLOAD
        size = 200 * 10**6
        PAYLOAD = os.urandom(size)
        rounds = self.few_rounds
        deco = jobstamped(cache_dir=self.dir("s6-deco"))(big_result)
        plain = self.work / "s6-plain.bin"

        def plain_write() -> None:
            with open(plain, "wb") as file:
                file.write(PAYLOAD)

        def plain_read() -> bytes:
            with open(plain, "rb") as file:
                return file.read()

        def unlink_plain() -> None:
            with contextlib.suppress(FileNotFoundError):
                plain.unlink()

        dc_dir = self.dir("s6-diskcache")
        dc = diskcache.Cache(dc_dir)
        dc_f = dc.memoize()(big_result)
        jl_mem = joblib.Memory(self.dir("s6-joblib"), verbose=0)
        jl_f = jl_mem.cache(big_result)

        drop_stores = internals.store_dropper()

        def load() -> object:
            drop_stores()
            return deco()

        assert deco() == PAYLOAD
        m_write = self.measure(
            [
                Contender(
                    "jobstamps stamp (first call)",
                    deco,
                    prepare=then_sync(deco.clear),
                    n=1,
                ),
                Contender(
                    "floor: plain file write",
                    plain_write,
                    prepare=then_sync(unlink_plain),
                    n=1,
                ),
                Contender(
                    "diskcache memoize (first call)",
                    dc_f,
                    prepare=then_sync(dc.clear),
                    n=1,
                ),
                Contender(
                    "joblib.Memory (first call)",
                    jl_f,
                    prepare=then_sync(functools.partial(jl_mem.clear, warn=False)),
                    n=1,
                ),
            ],
            rounds,
        )
        deco()
        dc_f()
        jl_f()
        plain_write()
        m_read = self.measure(
            [
                Contender("jobstamps load (hit)", load, n=1),
                Contender("floor: plain file read", plain_read, n=1),
                Contender("diskcache memoize (hit)", dc_f, n=1),
                Contender("joblib.Memory (hit)", jl_f, n=1),
            ],
            rounds,
        )
        dc.close()
        self.report.table(
            "6. a 200 MB bytes result: stamp, then load",
            [
                (k, fmt_rate(size, v), fmt_time(v))
                for k, v in {**m_write, **m_read}.items()
            ],
        )
        r = self.report
        r.check(
            "S6 stamp throughput / plain write",
            m_write["floor: plain file write"]
            / m_write["jobstamps stamp (first call)"],
            0.5,
            "min",
        )
        r.check(
            "S6 load throughput / plain read",
            m_read["floor: plain file read"] / m_read["jobstamps load (hit)"],
            0.5,
            "min",
        )
        r.scenarios["6"] = {**m_write, **m_read}
        PAYLOAD = b""
        deco.clear()

    # 7 ---------------------------------------------------------------
    def s7_cli(self) -> None:
        import importlib.util

        r = self.report
        runs = 30 if self.quick else 100
        commands: dict[str, list[str]] = {
            "floor: python -c pass": [sys.executable, "-c", "pass"],
            "floor: empty console script": [
                str(bin_path(CURRENT, "bench-empty-script"))
            ],
            # What a console script of jobstamps imports before it can serve a
            # hit: the wrapper's `re`, then the 0.0.20 shim and the core.
            "reference: python -c 'import re; from jobstamps import jobstamp'": [
                sys.executable,
                "-c",
                "import re; from jobstamps import jobstamp",
            ],
            "jobstamps 0.0.20 jobstamp -- true (cached)": [
                str(bin_path(LEGACY, "jobstamp")),
                "--stamp-directory",
                self.dir("s7-legacy"),
                "--",
                "true",
            ],
        }
        have_cli = importlib.util.find_spec("jobstamps._cli") is not None
        project = "jobstamps jobstamp -- true (cached)"
        if have_cli:
            commands[project] = [
                str(bin_path(CURRENT, "jobstamp")),
                "--stamp-directory",
                self.dir("s7-current"),
                "--",
                "true",
            ]
        env = clean_env()
        for argv in commands.values():
            subprocess.run(
                argv, check=True, env=env, stdout=subprocess.DEVNULL
            )  # stamps the command
        m = time_commands(commands, runs, max(3, self.rounds // 2), self.work, env)
        self.report.table(
            f"7. whole process, {runs} runs each ({'hyperfine' if shutil.which('hyperfine') else 'subprocess loop'})",
            [(k, fmt_time(v), "") for k, v in m.items()],
        )
        empty = m["floor: empty console script"]
        if have_cli:
            r.check(
                "S7 cached jobstamp -- true / empty console script",
                m[project] / empty,
                1.5,
            )
            r.info(
                "S7 cached jobstamp -- true / 0.0.20's",
                m[project] / m["jobstamps 0.0.20 jobstamp -- true (cached)"],
            )
        else:
            r.skip(
                "S7 cached jobstamp -- true / empty console script",
                "not available (no jobstamps._cli in this checkout)",
            )
        r.info(
            "S7 0.0.20 cached jobstamp -- true / empty console script",
            m["jobstamps 0.0.20 jobstamp -- true (cached)"] / empty,
        )
        r.info(
            "S7 empty console script / python -c pass",
            empty / m["floor: python -c pass"],
        )
        r.info(
            "S7 importing the hit path (with re) / empty console script",
            m["reference: python -c 'import re; from jobstamps import jobstamp'"]
            / empty,
        )
        r.scenarios["7"] = m


HOP = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"

MEMORY_PROBES = {
    "jobstamps first call (HashMethod)": """
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
    "floor: hashlib.file_digest sha256": """
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


# --------------------------------------------------------------------------
# Main


SCENARIOS = {
    "1": "s1_hit_nodeps",
    "2": "s2",
    "3": "s3",
    "4": "s4_first_hash",
    "5": "s5_scale",
    "6": "s6_large_result",
    "7": "s7_cli",
}


def in_env(args: argparse.Namespace) -> int:
    report = Report()
    print(f"machine: {machine()}")
    print(f"versions: {versions()}; peer: {LEGACY_REQUIREMENT} (own venv)")
    print(
        f"rounds: {args.rounds or (3 if args.quick else 9)}{' (--quick)' if args.quick else ''}"
    )
    wanted = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    legacy = Legacy()
    work = Path(tempfile.mkdtemp(prefix="jobstamps-bench-", dir=args.workdir))
    started = time.perf_counter()
    rounds = args.rounds or (3 if args.quick else 9)
    try:
        bench = Scenarios(args.quick, rounds, report, legacy, work)
        for number in wanted:
            os.sync()  # no writeback left over from the scenario before
            t0 = time.perf_counter()
            if number == "2":
                bench.s23_hit_deps("mtime")
            elif number == "3":
                bench.s23_hit_deps("hash")
            else:
                getattr(bench, SCENARIOS[number])()
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        legacy.close()
        shutil.rmtree(work, ignore_errors=True)
    summary(report.checks)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(report.to_json(machine=machine()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds, 100,000 stamps in scenario 5",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds per scenario (default 9, --quick 3)"
    )
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,2,7")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--workdir", help="where scratch files go (default: the system's temp dir)"
    )
    parser.add_argument(
        "--rebuild-envs", action="store_true", help="recreate benchmarks/.envs"
    )
    parser.add_argument("--in-env", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_env:
        return in_env(args)
    ensure_envs(args.rebuild_envs)
    forwarded = [
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--rebuild-envs"
    ]
    return subprocess.run(
        [
            str(bin_path(CURRENT, "python")),
            str(Path(__file__).resolve()),
            "--in-env",
            *forwarded,
        ],
        env=clean_env(),
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
