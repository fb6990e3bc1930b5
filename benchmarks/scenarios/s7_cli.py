"""
Scenario 7: the command line as a whole process. A cached ``jobstamp
--stamp-directory D -- true`` against an empty console script in the same
environment (target at most 1.5x), 0.0.20's cached ``jobstamp -- true``,
``python -c pass`` (the interpreter's own floor) and, for reference, the
imports a console script of jobstamps pays before it can serve a hit.
Timed with hyperfine when it is on PATH, else with a loop of ``subprocess``.

On a shared virtual machine those times swing by a third from one run to the
next (the empty script alone measured 24 to 33 ms in three runs of an hour),
so where valgrind is installed the same processes are also counted in
instructions (callgrind), which are the same in every run: the target is
checked on both.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from envs import CURRENT, LEGACY, bin_path, clean_env
from harness import Bench, time_commands
from report import fmt_time

EMPTY = "floor: empty console script"
PASS = "floor: python -c pass"
IMPORTS = "reference: python -c 'import re; from jobstamps import jobstamp'"
LEGACY_CLI = "jobstamps 0.0.20 jobstamp -- true (cached)"
PROJECT = "jobstamps jobstamp -- true (cached)"


def run(bench: Bench) -> None:
    runs = 30 if bench.quick else 100
    commands: dict[str, list[str]] = {
        PASS: [sys.executable, "-c", "pass"],
        EMPTY: [str(bin_path(CURRENT, "bench-empty-script"))],
        # What a console script of jobstamps imports before it can serve a
        # hit: the wrapper's `re`, then the 0.0.20 shim and the core.
        IMPORTS: [sys.executable, "-c", "import re; from jobstamps import jobstamp"],
        LEGACY_CLI: [
            str(bin_path(LEGACY, "jobstamp")),
            "--stamp-directory",
            bench.dir("s7-legacy"),
            "--",
            "true",
        ],
    }
    script = bin_path(CURRENT, "jobstamp")
    have_cli = script.exists()
    if have_cli:
        commands[PROJECT] = [
            str(script),
            "--stamp-directory",
            bench.dir("s7-current"),
            "--",
            "true",
        ]
    env = clean_env()
    for argv in commands.values():  # stamps the commands
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    m = time_commands(commands, runs, bench.few_rounds, bench.work, env)
    timer = "hyperfine" if shutil.which("hyperfine") else "subprocess loop"
    r = bench.report
    title = f"7. whole process, {runs} runs each ({timer})"
    r.table(title, [(k, fmt_time(v), "") for k, v in m.items()])
    p = r.panel("7", title, m, "s")
    empty = m[EMPTY]
    if have_cli:
        p.ratio(
            "S7 cached jobstamp -- true / empty console script", PROJECT, EMPTY, 1.5
        )
        r.info("S7 cached jobstamp -- true / 0.0.20's", m[PROJECT] / m[LEGACY_CLI])
    else:
        r.skip(
            "S7 cached jobstamp -- true / empty console script",
            "not available (this checkout installs no jobstamp script)",
        )
    r.info(
        "S7 0.0.20 cached jobstamp -- true / empty console script",
        m[LEGACY_CLI] / empty,
    )
    r.info("S7 empty console script / python -c pass", empty / m[PASS])
    r.info(
        "S7 importing the hit path (with re) / empty console script",
        m[IMPORTS] / empty,
    )
    r.scenarios["7"] = m
    if have_cli and shutil.which("valgrind"):
        _instructions(bench, commands, env)


def _instructions(
    bench: Bench, commands: dict[str, list[str]], env: dict[str, str]
) -> None:
    counted = {name: _count(argv, env) for name, argv in commands.items()}
    r = bench.report
    title = "7. whole process, instructions (callgrind)"
    r.table(title, [(k, f"{v / 1e6:.1f} M", "") for k, v in counted.items()])
    p = r.panel("7i", title, {k: v / 1e6 for k, v in counted.items()}, "M instr.")
    p.ratio(
        "S7 instructions: cached jobstamp -- true / empty console script",
        PROJECT,
        EMPTY,
        1.5,
    )
    r.info(
        "S7 instructions: 0.0.20 cached jobstamp -- true / empty console script",
        counted[LEGACY_CLI] / counted[EMPTY],
    )
    r.scenarios["7i"] = counted


def _count(argv: list[str], env: dict[str, str]) -> float:
    # Instructions of one run of *argv*, by callgrind (the same every run).
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind said: {done.stderr[-500:]}")
    return float(found.group(1))
