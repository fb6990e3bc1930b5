"""
Development sessions: ``nox`` runs the tests and the type check.
"""

from __future__ import annotations

import sys

import nox

nox.options.sessions = ["tests", "typecheck", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True

PYTHONS = ["3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]", "coverage[toml]")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)


@nox.session
def coverage_report(session: nox.Session) -> None:
    session.install("coverage[toml]")
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", "--show-missing")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy", "nox")
    session.run("mypy", "--strict", "src", "tests/typing", "noxfile.py")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src")


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """
    jobstamps against jobstamps 0.0.20 and its peers; not part of the tests.

    The benchmarks build their own environments under benchmarks/.envs/.
    nox -s bench -- --quick for fewer rounds, -- --only 1,2 for some scenarios,
    -- --json out.json --plot out.png to keep the figures and draw them.
    """
    session.run(sys.executable, "benchmarks/run.py", *session.posargs, external=True)
