"""
Scenario 8: the ``jobstamp`` command under load, whole processes.

8a, a miss's throughput: ``jobstamp -- head -c 1G /dev/zero`` writing to
/dev/null in an empty stamp directory (the command runs and its output is
stored) against
the same bytes through ``cat`` into a file (what a miss can't do less than:
pass the bytes on and keep them), with ``cat > /dev/null`` and ``tee FILE``
for reference, and a hit against ``cat`` of the stamp file. Target: at least
0.5x of ``cat > FILE``.

8b, peak RSS (``ru_maxrss`` of the children of a small intermediate
process, so that the benchmark's own size does not count) of a miss and a
hit with 1 GiB of output, of 1 GiB through ``--stdin``, and of publishing
1 GiB to a ``file://`` remote store. Target: under 100 MiB each.

8c, ``jobstamp cache ls`` over 10,000 stamps of a command holding 100 KiB
of output each (written straight in the stamp encoding), against ``ls -lR``
of the same folder. Targets: under 1 s and under 100 MiB.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import internals
from envs import CURRENT, bin_path, clean_env
from harness import Bench
from report import MiB, fmt_rate, fmt_time

GiB = 1024 * MiB
MISS = "jobstamps miss, 1 GiB"
CAT_FILE = "floor: cat > FILE"
CAT_NULL = "reference: cat > /dev/null"
TEE = "reference: tee FILE > /dev/null"
HIT = "jobstamps hit, 1 GiB"
CAT_STAMP = "reference: cat STAMP > /dev/null"
LS = "jobstamps cache ls, 10,000 stamps of 100 KiB"
LS_R = "reference: ls -lR of the same folder"

# Runs its arguments, then prints the peak RSS (KiB) of its children.
HOP = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run(bench: Bench) -> None:
    jobstamp = str(bin_path(CURRENT, "jobstamp"))
    if not Path(jobstamp).exists():
        bench.report.skip("S8", "this checkout installs no jobstamp script")
        return
    _throughput(bench, jobstamp)
    _memory(bench, jobstamp)
    _listing(bench, jobstamp)


def _time(
    commands: dict[str, tuple[str, str]], rounds: int, env: dict[str, str]
) -> dict[str, float]:
    """
    Median seconds of each shell command, one run each per round, in a
    rotating order; before each run, untimed, its preparation, then a sync.
    """
    names = list(commands)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            prepare, command = commands[name]
            subprocess.run(["sh", "-c", prepare or "true"], check=True, env=env)
            os.sync()
            start = time.perf_counter()
            subprocess.run(["sh", "-c", command], check=True, env=env)
            times[name].append(time.perf_counter() - start)
    return {name: sorted(values)[len(values) // 2] for name, values in times.items()}


def _throughput(bench: Bench, jobstamp: str) -> None:
    stamps = shlex.quote(bench.dir("s8-stamps"))
    replayed = shlex.quote(bench.dir("s8-replayed"))
    kept = shlex.quote(str(bench.work / "s8-kept.bin"))
    produce = f"head -c {GiB} /dev/zero"
    env = clean_env()
    # A hit of the same output, stored once.
    hit = f"{shlex.quote(jobstamp)} --stamp-directory {replayed} -- {produce}"
    subprocess.run(["sh", "-c", f"{hit} > /dev/null"], check=True, env=env)
    (stamp,) = internals.stamp_files(bench.dir("s8-replayed"))
    # Each run writes a new file, as a miss does: what an earlier run left
    # is removed first, untimed.
    m = _time(
        {
            MISS: (
                f"rm -rf {stamps}",
                f"{shlex.quote(jobstamp)} --stamp-directory {stamps} -- {produce} > /dev/null",
            ),
            CAT_FILE: (f"rm -f {kept}", f"{produce} | cat > {kept}"),
            CAT_NULL: ("", f"{produce} | cat > /dev/null"),
            TEE: (f"rm -f {kept}", f"{produce} | tee {kept} > /dev/null"),
            HIT: ("", f"{hit} > /dev/null"),
            CAT_STAMP: ("", f"cat {shlex.quote(str(stamp))} > /dev/null"),
        },
        bench.few_rounds,
        env,
    )
    subprocess.run(["sh", "-c", f"rm -rf {stamps} {replayed} {kept}"], check=True)
    r = bench.report
    title = "8a. 1 GiB of output through jobstamp (throughput, whole processes)"
    r.table(title, [(k, fmt_rate(GiB, v), fmt_time(v)) for k, v in m.items()])
    p = r.panel("8a", title, {k: GiB / MiB / v for k, v in m.items()}, "MiB/s")
    p.ratio("S8 miss throughput / cat > FILE", MISS, CAT_FILE, 0.5)
    r.info("S8 miss throughput / cat > /dev/null", m[CAT_NULL] / m[MISS])
    r.info("S8 miss throughput / tee FILE", m[TEE] / m[MISS])
    r.info("S8 hit throughput / cat STAMP", m[CAT_STAMP] / m[HIT])
    r.scenarios["8a"] = m


def _peak(argv: list[str], env: dict[str, str], stdin: object = None) -> float:
    done = subprocess.run(
        [sys.executable, "-c", HOP, *argv],
        stdin=stdin,  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return int(done.stdout) / 1024


def _memory(bench: Bench, jobstamp: str) -> None:
    env = clean_env()
    stamps = bench.dir("s8-memory")
    base = [jobstamp, "--stamp-directory", stamps]
    produce = ["head", "-c", str(GiB), "/dev/zero"]
    growth = {
        "jobstamps miss, 1 GiB of output": _peak([*base, "--", *produce], env),
        "jobstamps hit, 1 GiB of output": _peak([*base, "--", *produce], env),
    }
    feed = subprocess.Popen(produce, stdout=subprocess.PIPE)
    growth["jobstamps --stdin, 1 GiB in"] = _peak(
        [*base, "--stdin", "--", "wc", "-c"], env, feed.stdout
    )
    assert feed.stdout is not None
    feed.stdout.close()
    feed.wait()
    remote = bench.work / "s8-remote"
    shared = dict(
        env,
        JOBSTAMPS_STORE=f"file://{remote}",
        JOBSTAMPS_SECRET="s" * 32,
        JOBSTAMPS_ROOT=str(bench.work),
    )
    growth["jobstamps miss published, 1 GiB of output"] = _peak(
        [*base, "--use-hashes", "--force", "--", *produce], shared
    )
    shutil.rmtree(stamps)
    shutil.rmtree(remote, ignore_errors=True)
    r = bench.report
    title = "8b. peak RSS of jobstamp with 1 GiB of output or input (whole processes)"
    r.table(title, [(k, f"{v:.1f} MiB", "ru_maxrss") for k, v in growth.items()])
    p = r.panel("8b", title, growth, "MiB")
    for label in growth:
        p.at_most(f"S8 {label}: peak RSS", label, 100, "MiB")
    r.scenarios["8b"] = growth


def _listing(bench: Bench, jobstamp: str) -> None:
    count = 10_000
    root = Path(bench.dir("s8-ls"))
    folder, encoded = internals.command_stamp_writer()
    output = os.urandom(100 * 1024)
    now = time.time_ns()
    for i in range(count):
        digest = f"{i:040x}"
        path = root / folder / digest[:2] / digest[2:4] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded(now - i * 10**9, ["make", f"target{i}"], output))
    os.sync()
    env = clean_env()
    ls = f"{shlex.quote(jobstamp)} cache ls --stamp-directory {root} > /dev/null"
    m = _time(
        {LS: ("", ls), LS_R: ("", f"ls -lR {root} > /dev/null")}, bench.rounds, env
    )
    rss = _peak([jobstamp, "cache", "ls", "--stamp-directory", str(root)], env)
    shutil.rmtree(root)
    r = bench.report
    title = f"8c. cache ls over {count:,} stamps of 100 KiB of output (whole process)"
    r.table(
        title,
        [(k, fmt_time(v), "") for k, v in m.items()]
        + [("jobstamps cache ls: peak RSS", f"{rss:.1f} MiB", "ru_maxrss")],
    )
    p = r.panel("8c", title, m, "s")
    p.at_most("S8 cache ls over 10,000 stamps: time", LS, 1.0, "s")
    r.check("S8 cache ls over 10,000 stamps: peak RSS", rss, 100, "max", "MiB")
    r.scenarios["8c"] = {**m, "peak RSS MiB": rss}
