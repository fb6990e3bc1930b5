"""
The benchmarks' own virtual environments under ``benchmarks/.envs/``.

``current`` holds this checkout (editable), the peers and tools of
``requirements.txt`` and the do-nothing console script of ``_empty_script/``;
``legacy`` holds jobstamps 0.0.20 from PyPI. Both are made once and again when
what they are made from changes. This module runs under any Python (it is the
part of the benchmarks that runs before the environments exist), so it
imports nothing but the standard library and knows nothing of the scenarios.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENVS = HERE / ".envs"
CURRENT = ENVS / "current"
LEGACY = ENVS / "legacy"
DATA = ENVS / "data"
LEGACY_REQUIREMENT = "jobstamps==0.0.20"


def bin_path(env: Path, name: str) -> Path:
    """
    The executable *name* of the virtual environment *env*.
    """
    return env / "bin" / name


def _setup_marker() -> str:
    parts = [
        (ROOT / "pyproject.toml").read_text(),
        (HERE / "requirements.txt").read_text(),
        (HERE / "_empty_script" / "pyproject.toml").read_text(),
        (HERE / "_empty_script" / "bench_empty_script.py").read_text(),
        LEGACY_REQUIREMENT,
        sys.version,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _pip(env: Path, *args: str) -> None:
    done = subprocess.run(
        [
            str(bin_path(env, "python")),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"could not install {' '.join(args)} into {env}")


def ensure_envs(rebuild: bool) -> None:
    """
    Make ``current`` and ``legacy`` unless they are there and up to date.
    """
    marker = ENVS / "setup.done"
    wanted = _setup_marker()
    if not rebuild and marker.exists() and marker.read_text() == wanted:
        return
    print("setting up benchmarks/.envs (once) ...", flush=True)
    for env in (CURRENT, LEGACY):
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    _pip(
        CURRENT,
        "-e",
        str(ROOT),
        "-r",
        str(HERE / "requirements.txt"),
        str(HERE / "_empty_script"),
    )
    _pip(LEGACY, LEGACY_REQUIREMENT)
    marker.write_text(wanted)


def clean_env() -> dict[str, str]:
    """
    This process's environment without what would change a measured process:
    ``JOBSTAMPS_*`` settings and the variables that move bytecode or imports.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSTAMPS_")}
    # Start-up figures assume cached bytecode, as an installed package has.
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"):
        env.pop(name, None)
    return env
