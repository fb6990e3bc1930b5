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
import sys
import urllib.request

import pytest

from .loopback import LoopbackServer, unavailable

# moto accepts any credentials; s3fs, botocore and the processes the tests
# start read these from the environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server(LoopbackServer):
    """
    One moto server process, all in memory.
    """

    startup_seconds = 20.0
    poll_seconds = 0.05

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        """
        What a process needs to reach this server through s3fs.
        """
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def command(self) -> list[str]:
        return [self.executable, "-H", "127.0.0.1", "-p", str(self.port)]

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint, timeout=0.5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

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


def _executable() -> str:
    executable = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if executable is None:
        unavailable("moto_server is not installed (pip install 'moto[server]')")
    return executable


def _started() -> S3Server:
    server = S3Server(_executable())
    try:
        server.start()
    except RuntimeError as e:
        unavailable(str(e))
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
