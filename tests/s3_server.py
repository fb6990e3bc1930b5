"""
A real S3-protocol server on a free loopback port, for tests: moto's
standalone server (``moto[server]``, in the ``test`` extra), as s3fs's own
tests use it.

Import the fixtures into a test module to use them. If the server can't be
started the tests that need it are skipped, except on CI (``$CI`` set),
where they fail: a CI that silently skips them would test nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from .redis_server import free_port

STARTUP_SECONDS = 20.0
# moto accepts any credentials; s3fs, botocore and the processes the tests
# start read these from the environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def answers(endpoint: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class S3Server:
    """
    One moto server process, all in memory, killed by :meth:`stop`.
    """

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        """
        What a process needs to reach this server through s3fs.
        """
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def start(self) -> None:
        # The port may be taken between free_port() and the server binding it.
        for _ in range(3):
            self.port = free_port()
            self._process = subprocess.Popen(
                [self.executable, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + STARTUP_SECONDS
            while time.monotonic() < deadline and self._process.poll() is None:
                if answers(self.endpoint):
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"{self.executable} did not answer")

    def create_bucket(self, name: str) -> None:
        import botocore.session

        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()

    def stop(self) -> None:
        """
        Kill the server at once, as a crash would.
        """
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def _executable() -> str:
    executable = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if executable is None:
        message = "moto_server is not installed (pip install 'moto[server]')"
        if os.environ.get("CI"):
            pytest.fail(message + "; it is required on CI")
        pytest.skip(message)
    return executable


def _started() -> S3Server:
    server = S3Server(_executable())
    try:
        server.start()
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; it is required on CI")
        pytest.skip(str(e))
    return server


BUCKET = "jobstamps-test"


@pytest.fixture(name="s3_session_server", scope="session")
def _s3_session_server() -> object:
    """
    An S3 server shared by the whole session, with the bucket
    :data:`BUCKET`.
    """
    server = _started()
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture(name="s3_env")
def _s3_env(s3_session_server, monkeypatch) -> dict[str, str]:
    """
    The environment that reaches the session's S3 server, set for this test
    too; the value is what to give processes the test starts.
    """
    for name, value in s3_session_server.environment.items():
        monkeypatch.setenv(name, value)
    return dict(s3_session_server.environment)


@pytest.fixture(name="s3_url")
def _s3_url(s3_env) -> str:
    """
    An ``s3://`` location of the test's own in the session's bucket.
    """
    return f"s3://{BUCKET}/{os.urandom(6).hex()}"


@pytest.fixture(name="s3_server")
def _s3_server(monkeypatch) -> object:
    """
    An S3 server of the test's own, with the bucket :data:`BUCKET`, which the
    test may kill; its environment is set for the test.
    """
    server = _started()
    try:
        server.create_bucket(BUCKET)
        for name, value in server.environment.items():
            monkeypatch.setenv(name, value)
        yield server
    finally:
        server.stop()
