"""
How much a cached ``jobstamp -- CMD`` costs over starting an empty console
script, the floor any Python command-line tool pays.

Run it with the Python of an environment where jobstamps is installed::

    python benchmarks/cli_hit.py [--runs 300] [--limit 1.5]

It writes an empty entry point next to a launcher shaped like the one pip
generates (same interpreter, same imports), primes a stamp for
``jobstamp -- true`` in a temporary directory, then times both with
``hyperfine -N`` when it is on PATH, else with a loop of its own. It prints
the medians and their ratio, and exits 1 if the ratio exceeds ``--limit``.

Bytecode is compiled first: with PYTHONDONTWRITEBYTECODE set, an edited
module would otherwise be recompiled on every run, which users don't pay.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# What pip writes for a console script, with the module swapped.
LAUNCHER = """\
#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--limit", type=float, default=1.5)
    options = parser.parse_args()

    jobstamp = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
    if jobstamp is None:
        sys.exit("no jobstamp script next to this Python; install jobstamps first")
    import jobstamps

    compileall.compile_dir(os.path.dirname(jobstamps.__file__), quiet=1)

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "empty_entry_point.py"), "w") as file:
            file.write("def main():\n    return 0\n")
        compileall.compile_dir(tmp, quiet=1)
        empty = os.path.join(tmp, "empty")
        with open(empty, "w") as file:
            file.write(
                LAUNCHER.format(python=sys.executable, module="empty_entry_point")
            )
        os.chmod(empty, 0o755)

        os.environ["JOBSTAMPS_CACHE_DIR"] = os.path.join(tmp, "stamps")
        hit = [jobstamp, "--", "true"]
        subprocess.run(hit, check=True)  # the miss that stores the stamp

        commands = {"empty entry point": [empty], "jobstamp -- true (hit)": hit}
        if shutil.which("hyperfine"):
            medians = _hyperfine(commands, options.runs, tmp)
        else:
            medians = {
                name: _loop(argv, options.runs) for name, argv in commands.items()
            }

    empty_ms, hit_ms = medians.values()
    ratio = hit_ms / empty_ms
    for name, ms in medians.items():
        print(f"{name:26} {ms:6.2f} ms (median)")
    print(f"{'ratio':26} {ratio:6.2f} (limit {options.limit})")
    return 0 if ratio <= options.limit else 1


def _hyperfine(commands: dict[str, list[str]], runs: int, tmp: str) -> dict[str, float]:
    report = os.path.join(tmp, "hyperfine.json")
    subprocess.run(
        [
            "hyperfine",
            "-N",
            "--warmup",
            "30",
            "--runs",
            str(runs),
            "--export-json",
            report,
            *(" ".join(argv) for argv in commands.values()),
        ],
        check=True,
    )
    with open(report) as file:
        results = json.load(file)["results"]
    return {name: r["median"] * 1000 for name, r in zip(commands, results, strict=True)}


def _loop(argv: list[str], runs: int) -> float:
    for _ in range(20):
        subprocess.run(argv, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


if __name__ == "__main__":
    sys.exit(main())
