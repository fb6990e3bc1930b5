"""
A fleet of machines that miss the same stamps at the same moment: how many
times the jobs run, how long is spent inside them, and how long the fleet
takes, with no remote store, with one but no leases, and with leases.

    python benchmarks/fleet.py [--machines 8] [--jobs 20] [--seconds 0.5]
        [--rounds 3] [--json FILE] [--plot FILE] [--from-json FILE]

Run it with the Python of an environment where jobstamps is installed with
its redis extra (and matplotlib for --plot), on a machine with redis-server:
it starts its own on a free loopback port and stops it at the end.

A *machine* is a process with a checkout of its own (a project root holding
the same ``schema.txt``) and a cache directory of its own; machines share
only the redis-server. All of them start, make one call of their own (so
that imports and connections are paid before the clock starts), and are then
let go at the same instant; each calls the same jobs in the same order, as the
machines of a CI matrix run the same steps. A job is a ``@jobstamped``
function (``HashMethod``, depending on ``schema.txt``) whose body sleeps for
a known time. The modes:

- one machine: one machine alone, no remote store: the reference, each job
  run once;
- no remote: N machines, each with its local cache only;
- remote, no lease: N machines sharing the store, ``lease=False``;
- remote + lease: N machines sharing the store, with leases (the default).

Target: with leases, each job runs exactly once, and the fleet's wall time is
at most 1.2x that of one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from redis_server import start_redis

SECRET = "benchmark secret, not a real one"
MODES = ("one machine", "no remote", "remote, no lease", "remote + lease")
TARGET = 1.2
MET, MISSED = "#1a7f37", "#cf222e"

# What a job body did, in the worker process: (job, start, end), monotonic.
RUNS: list[tuple[int, float, float]] = []
SECONDS = 0.5


def job(i: int) -> int:
    """
    The body of every job: sleeps, and notes that it ran. Reads module
    globals, which are not part of its key.
    """
    start = time.monotonic()
    time.sleep(SECONDS if i >= 0 else 0)
    RUNS.append((i, start, time.monotonic()))
    return i


def worker(jobs: int, lease: bool) -> None:
    """
    One machine: get ready, wait for the word, call every job, report.
    """
    from jobstamps import HashMethod, jobstamped

    stamped = jobstamped(dependencies=["schema.txt"], method=HashMethod, lease=lease)(
        job
    )
    # A call of the machine's own (an argument no other machine uses) pays
    # for the imports (half a second for redis-py 8 here) and the connection
    # before the clock starts: machines of their own pay that side by side,
    # where processes sharing this host's CPUs would queue for them.
    stamped(-1 - int(os.environ["MACHINE"]))
    RUNS.clear()
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(jobs):
        assert i == stamped(i)
    print(json.dumps({"runs": RUNS, "end": time.monotonic()}), flush=True)


def run_fleet(
    top: str, mode: str, machines: int, jobs: int, seconds: float, url: str
) -> dict[str, Any]:
    """
    One round of *mode*: start the machines, let them go together, and
    gather what their job bodies did.
    """
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()
    work = tempfile.mkdtemp(prefix="fleet-", dir=top)
    count = 1 if mode == "one machine" else machines
    processes = []
    for m in range(count):
        checkout = os.path.join(work, f"m{m}", "project")
        os.makedirs(os.path.join(checkout, ".git"))
        with open(os.path.join(checkout, "schema.txt"), "w") as f:
            f.write("id: int\nname: str\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSTAMPS_")}
        env["JOBSTAMPS_CACHE_DIR"] = os.path.join(work, f"m{m}", "cache")
        env["MACHINE"] = str(m)
        if mode.startswith("remote"):
            env["JOBSTAMPS_STORE"] = url
            env["JOBSTAMPS_SECRET"] = SECRET
        args = ["--worker", "--jobs", str(jobs), "--seconds", str(seconds)]
        if mode == "remote, no lease":
            args.append("--no-lease")
        processes.append(
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), *args],
                cwd=checkout,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            sys.exit(f"a machine of mode {mode!r} did not start")
    go = time.monotonic()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            sys.exit(f"a machine of mode {mode!r} failed")
        reports.append(json.loads(out))
    shutil.rmtree(work)
    timeline = [
        [[i, start - go, end - go] for i, start, end in report["runs"]]
        for report in reports
    ]
    per_job = [0] * jobs
    for machine in timeline:
        for i, _, _ in machine:
            per_job[i] += 1
    return {
        "runs": sum(per_job),
        "most_runs_of_a_job": max(per_job),
        "job_seconds": sum(end - start for m in timeline for _, start, end in m),
        "wall": max(report["end"] for report in reports) - go,
        "timeline": timeline,
    }


def summarise(
    rounds: list[dict[str, dict[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """
    Per mode, the median of each figure over the rounds, and the timeline
    of the round whose wall time is the median.
    """
    summary = {}
    for mode in MODES:
        results = [r[mode] for r in rounds]
        walls = [float(r["wall"]) for r in results]
        middle = results[walls.index(statistics.median_low(walls))]
        summary[mode] = {
            "runs": statistics.median(int(r["runs"]) for r in results),
            "most_runs_of_a_job": max(int(r["most_runs_of_a_job"]) for r in results),
            "job_seconds": statistics.median(float(r["job_seconds"]) for r in results),
            "wall": statistics.median(walls),
            "walls": walls,
            "timeline": middle["timeline"],
        }
    return summary


def checks(data: dict[str, Any]) -> list[tuple[str, bool]]:
    config = data["config"]
    modes = data["modes"]
    jobs = config["jobs"]
    lease = modes["remote + lease"]
    ratio = lease["wall"] / modes["one machine"]["wall"]
    return [
        (
            f"remote + lease: each job runs once ({lease['runs']:g} runs of {jobs} "
            f"jobs, at most {lease['most_runs_of_a_job']} of one job)",
            lease["runs"] == jobs and lease["most_runs_of_a_job"] == 1,
        ),
        (
            f"remote + lease: wall time / one machine = {ratio:.3f}x (target <= {TARGET}x)",
            ratio <= TARGET,
        ),
    ]


def report(data: dict[str, Any]) -> None:
    config = data["config"]
    modes = data["modes"]
    print(
        f"{config['machines']} machines x {config['jobs']} jobs of {config['seconds']:g} s, "
        f"redis-server on loopback; medians of {config['rounds']} rounds"
    )
    print(f"  {'mode':18} {'runs':>6} {'job-seconds':>12} {'wall time':>10}")
    for mode in MODES:
        m = modes[mode]
        print(f"  {mode:18} {m['runs']:6g} {m['job_seconds']:11.1f}s {m['wall']:9.2f}s")
    for text, met in checks(data):
        print(f"  {'met   ' if met else 'MISSED'} {text}")


def plot(data: dict[str, Any], path: str) -> None:
    """
    Runs, job-seconds and wall time per mode, the targets on the bars they
    are about; below, what each machine ran when, without and with leases.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    config = data["config"]
    modes = data["modes"]
    colours = ["#8c8c8c", "#e8913a", "#9a6fc4", "#1f5fa8"]
    fig = plt.figure(figsize=(15, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 6, height_ratios=[1, 1.15])
    names = [m.replace(", ", ",\n").replace(" + ", " +\n") for m in MODES]
    one = modes["one machine"]
    lease = modes["remote + lease"]
    ratio = lease["wall"] / one["wall"]
    panels = [
        ("job runs", "runs", "{:g}", config["jobs"], "each job once"),
        ("job-seconds (time inside job bodies)", "job_seconds", "{:.1f} s", None, ""),
        (
            "wall time",
            "wall",
            "{:.2f} s",
            TARGET * one["wall"],
            f"<= {TARGET}x one machine ({ratio:.2f}x)",
        ),
    ]
    for column, (title, field, fmt, target, label) in enumerate(panels):
        ax = fig.add_subplot(grid[0, 2 * column : 2 * column + 2])
        values = [modes[m][field] for m in MODES]
        bars = ax.bar(names, values, color=colours)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(
                fmt.format(value),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
            )
        if target is not None:
            colour = MET if lease[field] <= target else MISSED
            ax.plot([3 - 0.45, 3 + 0.45], [target, target], "--", color=colour, lw=2)
            ax.legend(
                handles=[Line2D([], [], ls="--", lw=2, color=colour)],
                labels=[f"target, remote + lease: {label}"],
                loc="upper left",
                fontsize=8,
                frameon=False,
            )
        ax.set_title(title, fontsize=11)
        ax.tick_params(axis="x", labelsize=9)
        ax.set_ylim(0, max(max(values), target or 0) * 1.3)
    for column, mode in enumerate(("remote, no lease", "remote + lease")):
        ax = fig.add_subplot(grid[1, 3 * column : 3 * column + 3])
        timeline = modes[mode]["timeline"]
        for m, runs in enumerate(timeline):
            ax.broken_barh(
                [(start, end - start) for _, start, end in runs],
                (m - 0.4, 0.8),
                facecolors=colours[MODES.index(mode)],
                edgecolor="white",
                linewidth=0.5,
            )
        ax.set_yticks(
            range(len(timeline)), [f"machine {m + 1}" for m in range(len(timeline))]
        )
        ax.set_ylim(len(timeline) - 0.5, -0.5)
        ax.set_xlabel("seconds since the machines were let go")
        ax.set_xlim(0, max(modes[m]["wall"] for m in MODES) * 1.03)
        ax.set_title(
            f"{mode}: when each machine ran a job body "
            f"({modes[mode]['runs']:g} runs, wall {modes[mode]['wall']:.1f} s)",
            fontsize=11,
        )
    fig.suptitle(
        f"{config['machines']} machines x {config['jobs']} jobs of "
        f"{config['seconds']:g} s, all started together, sharing one redis-server "
        f"(medians of {config['rounds']} rounds)",
        fontsize=12,
    )
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machines", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also keep the figures")
    parser.add_argument("--plot", metavar="FILE", help="also draw them (matplotlib)")
    parser.add_argument("--from-json", metavar="FILE", help="report a kept run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-lease", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()

    if options.worker:
        global SECONDS
        SECONDS = options.seconds
        worker(options.jobs, lease=not options.no_lease)
        return 0

    if options.from_json:
        with open(options.from_json) as f:
            data = json.load(f)
    else:
        rounds = []
        with tempfile.TemporaryDirectory() as top:
            server, url = start_redis(top)
            try:
                for r in range(options.rounds):
                    order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
                    rounds.append(
                        {
                            mode: run_fleet(
                                top,
                                mode,
                                options.machines,
                                options.jobs,
                                options.seconds,
                                url,
                            )
                            for mode in order
                        }
                    )
            finally:
                server.kill()
                server.wait()
        data = {
            "config": {
                "machines": options.machines,
                "jobs": options.jobs,
                "seconds": options.seconds,
                "rounds": options.rounds,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            },
            "modes": summarise(rounds),
        }
    report(data)
    if options.json and not options.from_json:
        with open(options.json, "w") as f:
            json.dump(data, f, indent=1)
    if options.plot:
        plot(data, options.plot)
    return 0 if all(met for _, met in checks(data)) else 1


if __name__ == "__main__":
    sys.exit(main())
