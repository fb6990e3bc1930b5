from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, settings

from jobstamps import _counters

# A real redis-server on a free loopback port: fixtures redis_url (one for the
# session), redis_server (one per test, which it may kill) and prefix (the
# test's own keys on the session's server).
from .redis_server import _prefix, _redis_server, _redis_url  # noqa: F401

# A real S3 server (moto) on a free loopback port: s3_url (a location of the
# test's own on one server for the session) and s3_server (one per test).
from .s3_server import _s3_env, _s3_server, _s3_session_server, _s3_url  # noqa: F401

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(autouse=True)
def _reset_config(monkeypatch, tmp_path):
    """
    Every test starts with no JOBSTAMPS_* settings and a private cache dir.
    """
    for name in list(os.environ):
        if name.startswith("JOBSTAMPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    # The test process writes its counts at exit, never in the middle of a
    # test that looks at what its cache directory holds.
    monkeypatch.setattr(_counters, "_next_flush", math.inf)


@pytest.fixture(name="settled")
def _settled(monkeypatch):
    """
    File times are trusted as soon as they are seen: no racy window. (A file
    a test writes or touches has a change time of now, which is racy.)
    """
    from jobstamps import _methods

    monkeypatch.setattr(_methods, "_RACY_NS", -(10**12))
    monkeypatch.setattr(_methods, "_RACY_WHOLE_SECONDS_NS", -(10**12))


@pytest.fixture(name="cache_dir")
def _cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture(name="write")
def _write(tmp_path):
    """
    Write a file under tmp_path with a given content and mtime (seconds).
    """

    def write(name: str, content: str = "content", mtime: float | None = None) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return str(path)

    return write
