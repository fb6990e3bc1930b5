"""
jobstamps side by side with its peers, in one run: ``python benchmarks/run.py``.

The first run makes two virtual environments under ``benchmarks/.envs/``
(git-ignored): ``current`` (this checkout, editable, with the peers and a
do-nothing console script) and ``legacy`` (jobstamps 0.0.20 from PyPI). The
measurements then run in ``current``; 0.0.20 is timed by a worker process in
``legacy``, round by round between the others, so every ratio compares
figures taken in the same minutes. See README.md beside this file.

This module only reads the command line, starts itself again in ``current``
and runs the scenarios asked for (``scenarios/``) over the harness; it knows
no scenario but by its number, and nothing of how figures are taken.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from envs import CURRENT, LEGACY_REQUIREMENT, bin_path, clean_env, ensure_envs


def in_env(args: argparse.Namespace) -> int:
    """
    The run itself, inside ``.envs/current``; or, with ``--from-json``,
    the picture of an earlier run.
    """
    from harness import Bench, Legacy
    from report import Report, load, machine, summary, versions
    from scenarios import SCENARIOS, runner

    if args.from_json:
        data = load(args.from_json)
        summary(data["checks"])
        draw(data, args.plot)
        return 0
    report = Report()
    rounds = args.rounds or (3 if args.quick else 9)
    print(f"machine: {machine()}")
    print(f"versions: {versions()}; peer: {LEGACY_REQUIREMENT} (own venv)")
    print(f"rounds: {rounds}{' (--quick)' if args.quick else ''}")
    wanted = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    legacy = Legacy()
    work = Path(tempfile.mkdtemp(prefix="jobstamps-bench-", dir=args.workdir))
    started = time.perf_counter()
    try:
        bench = Bench(args.quick, rounds, report, legacy, work)
        for number in wanted:
            run = runner(number)  # imports the scenario's module
            os.sync()  # no writeback left over from the scenario before
            t0 = time.perf_counter()
            run(bench)
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        legacy.close()
        shutil.rmtree(work, ignore_errors=True)
    summary(report.checks)
    print(f"total {time.perf_counter() - started:.0f} s")
    about = {
        "machine": machine(),
        "versions": versions(),
        "rounds": rounds,
        "few_rounds": bench.few_rounds,
        "quick": args.quick,
    }
    if args.json:
        Path(args.json).write_text(report.to_json(**about))
    if args.plot:
        draw(json.loads(report.to_json(**about)), args.plot)
    return 0


def draw(data: dict[str, Any], path: str) -> None:
    """
    The picture of *data* (as ``--json`` writes it) into *path*.
    """
    import plot

    plot.draw(data, path)
    print(f"drew {path}")


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
        "--plot",
        metavar="FILE.png",
        help="also draw the figures, side by side with peers and floors",
    )
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="draw --plot from the figures an earlier --json wrote, without running",
    )
    parser.add_argument(
        "--workdir", help="where scratch files go (default: the system's temp dir)"
    )
    parser.add_argument(
        "--rebuild-envs", action="store_true", help="recreate benchmarks/.envs"
    )
    parser.add_argument("--in-env", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.from_json and not args.plot:
        parser.error("--from-json draws a picture: give --plot FILE.png too")
    if args.only:
        from scenarios import SCENARIOS

        unknown = [
            n.strip() for n in args.only.split(",") if n.strip() not in SCENARIOS
        ]
        if unknown:
            parser.error(
                f"no scenario {', '.join(unknown)}; there are {', '.join(SCENARIOS)}"
            )
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
